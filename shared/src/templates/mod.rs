//! The six `fincelo_*` templates: their definitions ([`catalog`]), their
//! submission to Meta and the tracking of their approval; the template
//! function's actions ([`handler`]) and its Lambda edge ([`lambda`]).

pub mod catalog;
pub mod handler;
pub mod lambda;
pub mod status;
pub mod submit;
