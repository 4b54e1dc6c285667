//! Interfaces to the Linux kernel that are more than a system call or two, kept apart from
//! the data path that uses them: [`v4l2`] is the device interface that both local cameras
//! (`source::v4l2`) and the board's hardware encoder (`encode::m2m`) drive; [`priority`]
//! lowers a background thread's CPU and I/O priority.

pub mod priority;
pub mod v4l2;
