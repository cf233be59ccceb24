pub mod launch_support;

pub fn placeholder() {}
