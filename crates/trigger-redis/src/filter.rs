//! Gyre's message filters for Redis triggers (`filter = { type = "x" }`).

/// Attribute values a message must have to reach a component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    attributes: Vec<(String, String)>,
}

impl MessageFilter {
    /// A filter on these top-level attributes (empty: every message).
    pub fn new(attributes: Vec<(String, String)>) -> Self {
        MessageFilter { attributes }
    }

    /// Whether `payload` passes: with no attributes, always; otherwise it
    /// must be a JSON object whose top-level attributes have the values
    /// (strings compared as strings, other JSON values as the JSON the
    /// filter value spells: `"1"` matches the number 1).
    pub fn matches(&self, payload: &[u8]) -> bool {
        if self.attributes.is_empty() {
            return true;
        }
        let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(payload) else {
            return false;
        };
        self.attributes
            .iter()
            .all(|(key, want)| match object.get(key) {
                Some(serde_json::Value::String(s)) => s == want,
                Some(other) => {
                    serde_json::from_str::<serde_json::Value>(want).is_ok_and(|w| w == *other)
                }
                None => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_as_a_table() {
        let order_created = MessageFilter::new(vec![("type".into(), "order.created".into())]);
        let two = MessageFilter::new(vec![
            ("type".into(), "order.created".into()),
            ("priority".into(), "1".into()),
        ]);
        let table: &[(&MessageFilter, &str, bool)] = &[
            (&MessageFilter::default(), "anything at all", true),
            (&MessageFilter::default(), "", true),
            (
                &order_created,
                r#"{"type":"order.created","data":{}}"#,
                true,
            ),
            (&order_created, r#"{"type":"order.deleted"}"#, false),
            (&order_created, r#"{"kind":"order.created"}"#, false),
            (&order_created, r#"["type","order.created"]"#, false),
            (&order_created, "not json", false),
            (
                &order_created,
                r#"{"data":{"type":"order.created"}}"#,
                false,
            ),
            (&two, r#"{"type":"order.created","priority":1}"#, true),
            (&two, r#"{"type":"order.created","priority":"1"}"#, true),
            (&two, r#"{"type":"order.created","priority":2}"#, false),
        ];
        for (filter, payload, want) in table {
            assert_eq!(
                filter.matches(payload.as_bytes()),
                *want,
                "{filter:?} on {payload}"
            );
        }
    }
}
