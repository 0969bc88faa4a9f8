//! The building blocks of the one reader: how a single JSON value is read,
//! leniently, in one pass over the body's bytes.
//!
//! # Tolerance without a tree
//! Every type here accepts *any* JSON value. A value of the expected type is
//! kept; any other is validated, dropped and remembered as "not there" (a
//! leaf) or "not an object / not an array" (an object or list), so that the
//! caller can skip the one item with a reason and read on. The only errors
//! are the body's own: invalid JSON (syntax, UTF-8, a lone surrogate, a
//! number out of `f64`'s range, nesting past 128) and a list over its cap
//! ([`super::bounds`]); either ends the read.
//!
//! Values the reader does not use go through [`Skip`], which validates them
//! as a `serde_json::Value` would parse them (so a body is valid JSON or not
//! whatever part of it is read) but keeps nothing and allocates nothing
//! except while decoding an escaped string.
//!
//! # The budget
//! Lists count their items against the body's [`Budget`]. serde has no
//! context parameter, so every type reads through [`Read`], which carries
//! the budget down the tree ([`Seed`] adapts it to serde's
//! `DeserializeSeed`).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::bounds::Budget;

/// A value read leniently, with the body's budget.
pub(super) trait Read<'de>: Sized {
    fn read<D: Deserializer<'de>>(d: D, budget: &Budget) -> Result<Self, D::Error>;
}

/// [`Read`] as a serde seed.
pub(super) struct Seed<'b, T>(&'b Budget, PhantomData<T>);

impl<'b, T> Seed<'b, T> {
    pub(super) fn new(budget: &'b Budget) -> Self {
        Seed(budget, PhantomData)
    }
}

impl<'de, T: Read<'de>> DeserializeSeed<'de> for Seed<'_, T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        T::read(d, self.0)
    }
}

// ---------------------------------------------------------------------------
// Skip: validate and drop.
// ---------------------------------------------------------------------------

/// Any JSON value, validated as `serde_json::Value` would parse it and then
/// dropped: numbers converted (one out of `f64`'s range is an error),
/// escapes decoded (a lone surrogate is an error), nesting counted against
/// the same recursion limit. serde's `IgnoredAny` skips without those
/// checks, so a body could pass here that a tree would refuse.
pub(super) struct Skip;

impl<'de> de::Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skip, A::Error> {
        drain_seq(seq).map(|()| Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Skip, A::Error> {
        drain_map(map).map(|()| Skip)
    }
}

/// Reads the rest of an array, keeping nothing.
pub(super) fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Skip>()?.is_some() {}
    Ok(())
}

/// Reads the rest of an object, keeping nothing (a key is validated where
/// serde_json decodes it, and not copied).
pub(super) fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_key::<Skip>()?.is_some() {
        map.next_value::<Skip>()?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Scalars.
// ---------------------------------------------------------------------------

/// One JSON value as the leaves see it: a scalar, or `Other` for null, an
/// array or an object (validated and dropped).
enum Scalar<'de> {
    Str(Cow<'de, str>),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Other,
}

/// A leaf: what it keeps of any JSON value.
trait Leaf<'de>: Sized {
    fn from_scalar(s: Scalar<'de>) -> Self;

    /// A string that had escapes, decoded in serde_json's scratch space:
    /// copied only by the leaves that keep it.
    fn from_transient(s: &str) -> Self {
        Self::from_scalar(Scalar::Str(Cow::Owned(s.to_owned())))
    }
}

/// Reads any value into the leaf `L`. One visitor type per leaf, so that
/// each leaf has its own copy of serde_json's dispatch on the value's first
/// byte (a string leaf's is then well predicted).
struct LeafVisitor<L>(PhantomData<L>);

fn read_leaf<'de, L: Leaf<'de>, D: Deserializer<'de>>(d: D) -> Result<L, D::Error> {
    d.deserialize_any(LeafVisitor::<L>(PhantomData))
}

impl<'de, L: Leaf<'de>> Visitor<'de> for LeafVisitor<L> {
    type Value = L;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<L, E> {
        Ok(L::from_scalar(Scalar::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<L, E> {
        Ok(L::from_scalar(Scalar::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<L, E> {
        Ok(L::from_scalar(Scalar::UInt(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<L, E> {
        Ok(L::from_scalar(Scalar::Float(v)))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<L, E> {
        Ok(L::from_scalar(Scalar::Str(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<L, E> {
        Ok(L::from_transient(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<L, E> {
        Ok(L::from_scalar(Scalar::Other))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<L, A::Error> {
        drain_seq(seq).map(|()| L::from_scalar(Scalar::Other))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<L, A::Error> {
        drain_map(map).map(|()| L::from_scalar(Scalar::Other))
    }
}

/// A number Meta sends as a string (timestamps, some error codes): 1 to 18
/// ASCII digits, so that it always fits an `i64`; anything else is None.
pub(super) fn digits(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + i64::from(d);
    }
    Some(n)
}

macro_rules! leaf_read {
    ($t:ty) => {
        impl<'de> Read<'de> for $t {
            fn read<D: Deserializer<'de>>(d: D, _: &Budget) -> Result<Self, D::Error> {
                read_leaf(d)
            }
        }
    };
}

/// A string; any other value is absent.
#[derive(Default, Debug)]
pub(super) struct Text<'a>(pub Option<Cow<'a, str>>);

impl<'de> Leaf<'de> for Text<'de> {
    fn from_scalar(s: Scalar<'de>) -> Self {
        Text(match s {
            Scalar::Str(s) => Some(s),
            _ => None,
        })
    }
}
leaf_read!(Text<'de>);

/// An id: a string as sent, or a whole number kept as its decimal string
/// (Meta sends some ids as numbers: `message_template_id`, limits). A float
/// is a whole number only below 9e15, where `f64` is still exact.
#[derive(Default, Debug)]
pub(super) struct Id<'a>(pub Option<Cow<'a, str>>);

impl<'de> Leaf<'de> for Id<'de> {
    fn from_scalar(s: Scalar<'de>) -> Self {
        Id(match s {
            Scalar::Str(s) => Some(s),
            Scalar::Int(i) => Some(Cow::Owned(i.to_string())),
            Scalar::UInt(u) => Some(Cow::Owned(u.to_string())),
            Scalar::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Some(Cow::Owned(format!("{f:.0}")))
            }
            _ => None,
        })
    }
}
leaf_read!(Id<'de>);

impl<'a> Id<'a> {
    /// The id when present and not empty.
    pub(super) fn non_empty(self) -> Option<Cow<'a, str>> {
        self.0.filter(|s| !s.is_empty())
    }
}

/// Unix seconds: a string of 1 to 18 digits, or a JSON number (a float is
/// truncated; one at or beyond ±9e18 is absent, as it would not fit).
#[derive(Default, Debug, Clone, Copy)]
pub(super) struct Time(pub Option<i64>);

impl<'de> Leaf<'de> for Time {
    fn from_scalar(s: Scalar<'de>) -> Self {
        Time(match s {
            Scalar::Str(s) => digits(&s),
            Scalar::Int(i) => Some(i),
            Scalar::UInt(u) => i64::try_from(u).ok(),
            Scalar::Float(f) if f.is_finite() && f.abs() < 9.0e18 => Some(f.trunc() as i64),
            _ => None,
        })
    }
    fn from_transient(s: &str) -> Self {
        Time(digits(s))
    }
}
leaf_read!(Time);

/// An error `code`: an integer within `i64`, or a string of 1 to 18 digits.
/// A float is absent.
#[derive(Default, Debug, Clone, Copy)]
pub(super) struct Code(pub Option<i64>);

impl<'de> Leaf<'de> for Code {
    fn from_scalar(s: Scalar<'de>) -> Self {
        Code(match s {
            Scalar::Str(s) => digits(&s),
            Scalar::Int(i) => Some(i),
            Scalar::UInt(u) => i64::try_from(u).ok(),
            _ => None,
        })
    }
    fn from_transient(s: &str) -> Self {
        Code(digits(s))
    }
}
leaf_read!(Code);

/// A boolean; any other value is absent.
#[derive(Default, Debug, Clone, Copy)]
pub(super) struct Flag(pub Option<bool>);

impl<'de> Leaf<'de> for Flag {
    fn from_scalar(s: Scalar<'de>) -> Self {
        Flag(match s {
            Scalar::Bool(b) => Some(b),
            _ => None,
        })
    }
    fn from_transient(_: &str) -> Self {
        Flag(None)
    }
}
leaf_read!(Flag);

// ---------------------------------------------------------------------------
// Lists.
// ---------------------------------------------------------------------------

/// An array of `T`, each item counted against the body's budget for list
/// kind `K` (see [`super::bounds`]). Absent and `null` are told apart from a
/// value of another type, which the caller reports.
#[derive(Debug, Default)]
pub(super) enum List<T, const K: usize> {
    #[default]
    Absent,
    Null,
    NotArray,
    Items(Vec<T>),
}

impl<T, const K: usize> List<T, K> {
    /// The items: none when absent, null or not an array.
    pub(super) fn items(&self) -> &[T] {
        match self {
            List::Items(v) => v,
            _ => &[],
        }
    }

    pub(super) fn into_items(self) -> Vec<T> {
        match self {
            List::Items(v) => v,
            _ => Vec::new(),
        }
    }

    pub(super) fn is_not_array(&self) -> bool {
        matches!(self, List::NotArray)
    }
}

impl<'de, T: ReadInto<'de> + Default, const K: usize> Read<'de> for List<T, K> {
    fn read<D: Deserializer<'de>>(d: D, budget: &Budget) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor::<T, K>(budget, PhantomData))
    }
}

struct ListVisitor<'b, T, const K: usize>(&'b Budget, PhantomData<T>);

impl<'de, T: ReadInto<'de> + Default, const K: usize> Visitor<'de> for ListVisitor<'_, T, K> {
    type Value = List<T, K>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(List::NotArray)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(List::NotArray)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(List::NotArray)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(List::NotArray)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(List::NotArray)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(List::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| List::NotArray)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items: Vec<T> = Vec::new();
        // Each item is read in place into `next` (items are structs of
        // hundreds of bytes: returning them through serde's layers would
        // copy them each time), then moved once into the list. The next one
        // is counted before it is read: one over the cap is refused without
        // reading it.
        let mut next = T::default();
        while seq
            .next_element_seed(Counted::<T, K>(self.0, &mut next))?
            .is_some()
        {
            push(&mut items, std::mem::take(&mut next));
        }
        Ok(List::Items(items))
    }
}

/// Pushes `t`, making room for one at first: most lists of Meta's hold
/// one item, and a first block of four large items would take the
/// allocator's slow path.
pub(super) fn push<T>(v: &mut Vec<T>, t: T) {
    if v.capacity() == 0 {
        v.reserve_exact(1);
    }
    v.push(t);
}

/// One list item: takes its place in the budget, then is read into `slot`.
struct Counted<'b, 's, T, const K: usize>(&'b Budget, &'s mut T);

impl<'de, T: ReadInto<'de>, const K: usize> DeserializeSeed<'de> for Counted<'_, '_, T, K> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if !self.0.take(K) {
            return Err(de::Error::custom("list over its cap"));
        }
        T::read_into(d, self.1, self.0)
    }
}

// ---------------------------------------------------------------------------
// Objects.
// ---------------------------------------------------------------------------

/// A struct read from the keys of a JSON object (see [`object!`]).
pub(super) trait Fill<'de>: Default {
    fn fill<A: MapAccess<'de>>(&mut self, map: A, budget: &Budget) -> Result<(), A::Error>;
}

/// A value read into a place that already exists (a list's slot, a box),
/// so that a large struct is never moved after it is read.
pub(super) trait ReadInto<'de> {
    fn read_into<D: Deserializer<'de>>(
        d: D,
        slot: &mut Self,
        budget: &Budget,
    ) -> Result<(), D::Error>;
}

/// An object: `Some` when the value is an object, `None` for any other
/// value (validated and dropped), so the caller can say so.
impl<'de, T: Fill<'de>> Read<'de> for Option<T> {
    fn read<D: Deserializer<'de>>(d: D, budget: &Budget) -> Result<Self, D::Error> {
        let mut slot = None;
        Self::read_into(d, &mut slot, budget)?;
        Ok(slot)
    }
}

impl<'de, T: Fill<'de>> ReadInto<'de> for Option<T> {
    fn read_into<D: Deserializer<'de>>(
        d: D,
        slot: &mut Self,
        budget: &Budget,
    ) -> Result<(), D::Error> {
        d.deserialize_any(ObjectVisitor(slot, budget, in_option::<T>))
    }
}

/// A large object read boxed, so that the struct holding it stays small;
/// it is read in place on the heap.
pub(super) struct Boxed<T>(pub Option<Box<T>>);

impl<T> Default for Boxed<T> {
    fn default() -> Self {
        Boxed(None)
    }
}

impl<T: fmt::Debug> fmt::Debug for Boxed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de, T: Fill<'de>> Read<'de> for Boxed<T> {
    fn read<D: Deserializer<'de>>(d: D, budget: &Budget) -> Result<Self, D::Error> {
        let mut slot = None;
        d.deserialize_any(ObjectVisitor(&mut slot, budget, in_box::<T>))?;
        Ok(Boxed(slot))
    }
}

/// A default `T` in the slot, to be filled.
fn in_option<T: Default>(slot: &mut Option<T>) -> &mut T {
    slot.insert(T::default())
}

/// A default `T` in a new box in the slot, to be filled.
fn in_box<T: Default>(slot: &mut Option<Box<T>>) -> &mut T {
    slot.insert(Box::default())
}

/// Reads an object into the place `make` prepares in `slot`; leaves `slot`
/// as it is (`None`) for any other value.
struct ObjectVisitor<'s, 'b, S, T>(&'s mut S, &'b Budget, for<'x> fn(&'x mut S) -> &'x mut T);

impl<'de, S, T> Visitor<'de> for ObjectVisitor<'_, '_, S, T>
where
    T: Fill<'de>,
{
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let ObjectVisitor(slot, budget, make) = self;
        make(slot).fill(map, budget)
    }
}

/// A struct read from a JSON object: the listed keys into their fields
/// (each through its own [`Read`]), every other key through [`Skip`], a key
/// listed twice read twice and the last kept (as a `serde_json::Map` keeps
/// it). Keys are matched where serde_json hands them over, escaped or not,
/// so reading a key never allocates. Read as `Option<Self>` (see
/// [`Fill`]'s impls).
macro_rules! object {
    ($(#[$doc:meta])* $name:ident { $($key:literal => $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Default, Debug)]
        pub(super) struct $name<'a> {
            $(pub(super) $field: $ty,)*
            pub(super) _body: std::marker::PhantomData<&'a str>,
        }

        impl<'de> $crate::webhook::payload::leaf::Fill<'de> for $name<'de> {
            #[allow(unused_mut)]
            fn fill<A: serde::de::MapAccess<'de>>(
                &mut self,
                mut map: A,
                budget: &$crate::webhook::payload::bounds::Budget,
            ) -> Result<(), A::Error> {
                use $crate::webhook::payload::leaf::{Seed, Skip};
                use serde::de::{self, Visitor};

                /// The keys this struct reads, and the rest.
                #[allow(non_camel_case_types)]
                enum Field {
                    $($field,)*
                    Other,
                }

                impl<'de> de::Deserialize<'de> for Field {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        struct K;
                        impl Visitor<'_> for K {
                            type Value = Field;
                            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                                f.write_str("a key")
                            }
                            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                                Ok(match v {
                                    $($key => Field::$field,)*
                                    _ => Field::Other,
                                })
                            }
                        }
                        d.deserialize_str(K)
                    }
                }

                while let Some(key) = map.next_key::<Field>()? {
                    match key {
                        $(Field::$field => self.$field = map.next_value_seed(Seed::new(budget))?,)*
                        Field::Other => {
                            map.next_value::<Skip>()?;
                        }
                    }
                }
                Ok(())
            }
        }
    };
}

pub(super) use object;
