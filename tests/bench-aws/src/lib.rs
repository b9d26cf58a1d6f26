//! Nothing to link: see `benches/hot_path.rs`.
