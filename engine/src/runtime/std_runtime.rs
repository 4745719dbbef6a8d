//! [`Runtime`](super::Runtime) on the operating system's threads and `std::sync`: what a real
//! deployment and the std stress tests use.

implement_runtime! {
    /// OS threads and `std::sync`.
    StdRuntime on std
}
