//! The standard resource classes (os-resource-classes 1.1.0, in id order) and standard traits
//! (os-traits 3.9.0) that every placementd ships. They are compiled in, never stored: they
//! exist from the first moment and cannot be changed or deleted.

use std::collections::HashSet;
use std::sync::OnceLock;

const RESOURCE_CLASSES: &str = include_str!("../data/standard-resource-classes.txt");
const TRAITS: &str = include_str!("../data/standard-traits.txt");

/// Custom resource class ids start here, as in Placement.
pub const FIRST_CUSTOM_RESOURCE_CLASS_ID: u32 = 10_000;

/// Standard resource class names; a class's index is its id.
pub fn resource_classes() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| lines(RESOURCE_CLASSES))
}

/// Standard trait names, sorted as shipped.
pub fn traits() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| lines(TRAITS))
}

pub fn is_standard_resource_class(name: &str) -> bool {
    resource_classes().contains(&name)
}

pub fn is_standard_trait(name: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| traits().iter().copied().collect())
        .contains(name)
}

fn lines(text: &'static str) -> Vec<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ships_the_standard_data() {
        assert_eq!(super::resource_classes()[0], "VCPU");
        assert_eq!(super::resource_classes().len(), 21);
        assert!(super::is_standard_trait("HW_CPU_X86_AVX2"));
        assert!(super::is_standard_trait("MISC_SHARES_VIA_AGGREGATE"));
        assert!(!super::is_standard_trait("CUSTOM_FOO"));
    }
}
