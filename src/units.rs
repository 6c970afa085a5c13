//! Sizes as Arca prints them: one decimal unit system (`12.3 MB`) in every
//! message, progress bar and report.

/// A size in decimal units (`12.3 MB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_use_decimal_units() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(12_345_678), "12.3 MB");
        assert_eq!(human_size(1_080_000_000), "1.1 GB");
    }
}
