//! Set algebra on groups: `|`, `&`, `-`, `^`, keeping the left group's
//! order and sharing connections.

use std::collections::HashSet;
use std::sync::Arc;

use super::Group;

impl Group {
    fn combine(&self, other: &Group, keep: impl Fn(bool, bool) -> bool) -> Group {
        let mut members = Vec::new();
        let mut seen = HashSet::new();
        for m in self.members.iter().chain(&other.members) {
            if seen.insert(m.name.as_str()) && keep(self.contains(&m.name), other.contains(&m.name))
            {
                members.push(Arc::clone(m));
            }
        }
        Group {
            members,
            ..self.settings()
        }
    }
}

macro_rules! set_operator {
    ($trait:ident, $method:ident, $doc:literal, $keep:expr) => {
        #[doc = $doc]
        impl std::ops::$trait<&Group> for &Group {
            type Output = Group;
            fn $method(self, other: &Group) -> Group {
                self.combine(other, $keep)
            }
        }

        #[doc = $doc]
        impl std::ops::$trait for Group {
            type Output = Group;
            fn $method(self, other: Group) -> Group {
                self.combine(&other, $keep)
            }
        }
    };
}

set_operator!(BitOr, bitor, "Hosts in either group (union).", |a, b| a
    || b);
set_operator!(
    BitAnd,
    bitand,
    "Hosts in both groups (intersection).",
    |a, b| a && b
);
set_operator!(
    Sub,
    sub,
    "Hosts in the left group only (difference).",
    |a, b| a && !b
);
set_operator!(
    BitXor,
    bitxor,
    "Hosts in exactly one of the groups (symmetric difference).",
    |a, b| a != b
);
