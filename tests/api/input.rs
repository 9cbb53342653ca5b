//! (filled in below)

use crate::helpers::Scenario;

pub fn tests() -> Vec<Scenario> {
    Vec::new()
}
