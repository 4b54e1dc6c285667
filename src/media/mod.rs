//! What flows along the data path, and just enough codec knowledge to handle it without
//! decoding: the [`h26x::Codec`] of a stream, NAL units and their kinds ([`h26x`]), and one
//! encoded access unit with its timestamp ([`frame::EncodedFrame`]), the unit a source hands
//! to its camera's chunk writer.

pub mod audio;
pub mod frame;
pub mod h26x;
