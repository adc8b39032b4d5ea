//! Spin's Liquid filters, registered once in [`FILTERS`].
//!
//! A template written for Spin uses `{{ project-name | kebab_case }}` and
//! friends; these behave exactly as Spin's (the same `heck` conversions), so
//! the same template renders the same files in Gyre.

use heck::{ToKebabCase as _, ToSnakeCase as _, ToUpperCamelCase as _};
use liquid_core::parser::{FilterArguments, FilterReflection, ParameterReflection, ParseFilter};
use liquid_core::{Expression, Filter, Runtime, Value, ValueView};

/// One case conversion: its Liquid name, what it does, and the function.
#[derive(Clone, Copy)]
pub(crate) struct CaseFilter {
    name: &'static str,
    description: &'static str,
    convert: fn(&str) -> String,
}

/// Every filter Gyre adds to Liquid's standard library, as Spin names them.
pub(crate) const FILTERS: &[CaseFilter] = &[
    CaseFilter {
        name: "kebab_case",
        description: "My Application -> my-application",
        convert: |s| s.to_kebab_case(),
    },
    CaseFilter {
        name: "snake_case",
        description: "My Application -> my_application",
        convert: |s| s.to_snake_case(),
    },
    CaseFilter {
        name: "pascal_case",
        description: "my-application -> MyApplication",
        convert: |s| s.to_upper_camel_case(),
    },
    CaseFilter {
        name: "dotted_pascal_case",
        description: "my.pet-store -> My.PetStore",
        convert: dotted_pascal_case,
    },
    CaseFilter {
        name: "http_wildcard",
        description: "/api -> /api/... (adds Spin's wildcard suffix when missing)",
        convert: http_wildcard,
    },
];

fn dotted_pascal_case(s: &str) -> String {
    s.split('.')
        .map(|part| part.to_upper_camel_case())
        .collect::<Vec<_>>()
        .join(".")
}

fn http_wildcard(route: &str) -> String {
    if route.ends_with("/...") {
        route.to_string()
    } else if route.ends_with('/') {
        format!("{route}...")
    } else {
        format!("{route}/...")
    }
}

impl FilterReflection for CaseFilter {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        self.description
    }
    fn positional_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
    fn keyword_parameters(&self) -> &'static [ParameterReflection] {
        &[]
    }
}

impl ParseFilter for CaseFilter {
    fn parse(&self, mut arguments: FilterArguments<'_>) -> liquid_core::Result<Box<dyn Filter>> {
        let extra: Option<Expression> = arguments.positional.next();
        if extra.is_some() || arguments.keyword.next().is_some() {
            return Err(liquid_core::Error::with_msg(format!(
                "the `{}` filter takes no arguments",
                self.name
            )));
        }
        Ok(Box::new(*self))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

impl std::fmt::Debug for CaseFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl std::fmt::Display for CaseFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Filter for CaseFilter {
    fn evaluate(
        &self,
        input: &dyn ValueView,
        _runtime: &dyn Runtime,
    ) -> liquid_core::Result<Value> {
        let text = input.as_scalar().ok_or_else(|| {
            liquid_core::Error::with_msg(format!("the `{}` filter expects text", self.name))
        })?;
        Ok(Value::scalar((self.convert)(&text.into_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::FILTERS;

    fn apply(name: &str, input: &str) -> String {
        let filter = FILTERS
            .iter()
            .find(|f| f.name == name)
            .expect("filter is registered");
        (filter.convert)(input)
    }

    #[test]
    fn filters_convert_as_spin_does() {
        let cases = [
            ("kebab_case", "My Application", "my-application"),
            ("kebab_case", "originally_snaky", "originally-snaky"),
            ("snake_case", "originally-kebabby", "originally_kebabby"),
            ("pascal_case", "originally_snaky", "OriginallySnaky"),
            (
                "dotted_pascal_case",
                "fermyon.pet-store",
                "Fermyon.PetStore",
            ),
            ("dotted_pascal_case", "fermyon pet store", "FermyonPetStore"),
            ("http_wildcard", "/api", "/api/..."),
            ("http_wildcard", "/api/", "/api/..."),
            ("http_wildcard", "/api/...", "/api/..."),
        ];
        for (filter, input, expected) in cases {
            assert_eq!(apply(filter, input), expected, "{filter}({input:?})");
        }
    }
}
