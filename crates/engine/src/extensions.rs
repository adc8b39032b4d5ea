//! Per-instance state of host capabilities, kept in the store by type
//! (what [`crate::PrepareInstance`] fills in and host functions read).

use std::any::Any;

/// Per-instance state of host capabilities, by type. A store holds one
/// value per capability at most, so a linear scan over a handful of boxes
/// is the fastest map there is.
#[derive(Default)]
pub struct Extensions {
    values: Vec<Box<dyn Any + Send>>,
}

impl Extensions {
    /// Stores `value`, replacing any earlier value of the same type.
    pub fn insert<T: Any + Send>(&mut self, value: T) {
        match self.get_mut::<T>() {
            Some(slot) => *slot = value,
            None => self.values.push(Box::new(value)),
        }
    }

    /// The value of type `T`, if one was inserted.
    pub fn get_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.values.iter_mut().find_map(|v| v.downcast_mut::<T>())
    }

    /// The value of type `T`, inserting `T::default()` first if absent.
    pub fn get_or_default<T: Any + Send + Default>(&mut self) -> &mut T {
        let index = match self.values.iter().position(|v| v.is::<T>()) {
            Some(index) => index,
            None => {
                self.values.push(Box::new(T::default()));
                self.values.len() - 1
            }
        };
        match self.values[index].downcast_mut::<T>() {
            Some(value) => value,
            None => unreachable!("the value at this index has type T"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug, PartialEq)]
    struct A(u32);
    #[derive(Default, Debug, PartialEq)]
    struct B(&'static str);

    #[test]
    fn values_are_found_by_type() {
        let mut ext = Extensions::default();
        assert_eq!(ext.get_mut::<A>(), None);
        ext.insert(A(1));
        ext.insert(B("b"));
        ext.insert(A(2));
        assert_eq!(ext.get_mut::<A>(), Some(&mut A(2)));
        assert_eq!(ext.get_mut::<B>(), Some(&mut B("b")));
        assert_eq!(ext.values.len(), 2);
    }

    #[test]
    fn absent_values_default() {
        let mut ext = Extensions::default();
        ext.get_or_default::<A>().0 += 5;
        assert_eq!(ext.get_or_default::<A>(), &mut A(5));
    }
}
