//! One table of names per enum: the `named_enum!` macro generates the string form, parsing,
//! serde, and (behind features) the PostgreSQL and OpenAPI impls from a single list, so a name
//! is written once and every layer (spans, metrics, SQL, JSON, CLI) agrees on it.

/// A string that names no member of an enum of names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{given}` (expected {})", expected.join(", "))]
pub struct UnknownName {
    /// What was being named (`stage`, `mesh format`, …).
    pub what: &'static str,
    pub given: String,
    pub expected: &'static [&'static str],
}

/// Looks `given` up among `names` (trimmed, ASCII case-insensitive: `GLB` is `glb`).
pub(crate) fn find<T: Copy>(
    what: &'static str,
    given: &str,
    all: &[T],
    names: &'static [&'static str],
) -> Result<T, UnknownName> {
    let wanted = given.trim();
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(wanted))
        .map(|i| all[i])
        .ok_or_else(|| UnknownName {
            what,
            given: given.to_owned(),
            expected: names,
        })
}

/// Declares a fieldless enum whose members have stable snake_case names.
///
/// ```ignore
/// named_enum! {
///     /// Docs.
///     pub enum Engine: "engine" {
///         /// Variant docs.
///         Inflate = "inflate",
///     }
/// }
/// ```
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];
            /// Every member's name, in declaration order.
            pub const NAMES: [&'static str; [$($text),+].len()] = [$($text),+];

            /// The stable name (spans, metrics, SQL, JSON, CLI).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Position in [`Self::ALL`].
            pub const fn index(self) -> usize {
                self as usize
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::names::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                const NAMES: &[&str] = &$name::NAMES;
                $crate::names::find($what, s, &$name::ALL, NAMES)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }

        #[cfg(feature = "openapi")]
        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                $crate::names::string_enum_schema(&$name::NAMES)
            }
        }

        #[cfg(feature = "openapi")]
        impl ::utoipa::ToSchema for $name {}
    };
}
pub(crate) use named_enum;

/// An OpenAPI string schema limited to `names`.
#[cfg(feature = "openapi")]
pub(crate) fn string_enum_schema(
    names: &[&str],
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names.iter().copied()))
        .into()
}

/// PostgreSQL impls through the type's `Display` and `FromStr`, so SQL uses the same names as
/// everything else: `pg_enum` for a column of a PostgreSQL enum type, `text` for a TEXT column.
#[cfg(feature = "sqlx")]
macro_rules! sql_name {
    (pg_enum $name:ty, $pg:literal) => {
        impl ::sqlx::Type<::sqlx::Postgres> for $name {
            fn type_info() -> ::sqlx::postgres::PgTypeInfo {
                ::sqlx::postgres::PgTypeInfo::with_name($pg)
            }
        }
        $crate::names::sql_name!(codec $name);
    };
    (text $name:ty) => {
        impl ::sqlx::Type<::sqlx::Postgres> for $name {
            fn type_info() -> ::sqlx::postgres::PgTypeInfo {
                <str as ::sqlx::Type<::sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &::sqlx::postgres::PgTypeInfo) -> bool {
                <str as ::sqlx::Type<::sqlx::Postgres>>::compatible(ty)
            }
        }
        $crate::names::sql_name!(codec $name);
    };
    (codec $name:ty) => {
        impl<'r> ::sqlx::Decode<'r, ::sqlx::Postgres> for $name {
            fn decode(
                value: ::sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, ::sqlx::error::BoxDynError> {
                let s = <&'r str as ::sqlx::Decode<'r, ::sqlx::Postgres>>::decode(value)?;
                Ok(s.parse()?)
            }
        }
        impl<'q> ::sqlx::Encode<'q, ::sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut ::sqlx::postgres::PgArgumentBuffer,
            ) -> Result<::sqlx::encode::IsNull, ::sqlx::error::BoxDynError> {
                <String as ::sqlx::Encode<'q, ::sqlx::Postgres>>::encode(self.to_string(), buf)
            }
        }
    };
}
#[cfg(feature = "sqlx")]
pub(crate) use sql_name;

#[cfg(test)]
mod tests {
    named_enum! {
        /// A test enum.
        pub enum Colour: "colour" {
            Red = "red",
            DeepBlue = "deep_blue",
        }
    }

    #[test]
    fn names_round_trip_through_every_form() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>(), Ok(c));
            let json = serde_json::to_string(&c).expect("json");
            assert_eq!(json, format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<Colour>(&json).expect("back"), c);
        }
        assert_eq!(" DEEP_blue ".parse::<Colour>(), Ok(Colour::DeepBlue));
        let err = "green".parse::<Colour>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown colour `green` (expected red, deep_blue)"
        );
        assert!(serde_json::from_str::<Colour>("\"green\"").is_err());
        assert_eq!(Colour::DeepBlue.index(), 1);
    }
}
