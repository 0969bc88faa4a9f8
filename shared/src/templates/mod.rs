//! The six `fincelo_*` templates: their definitions ([`catalog`]), their
//! submission to Meta and the tracking of their approval.

pub mod catalog;
pub mod handler;
pub mod status;
pub mod submit;
