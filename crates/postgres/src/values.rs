//! PostgreSQL values in one model that every interface version maps onto:
//! decoding a row by its column types, encoding a parameter for the type
//! the server inferred.
//!
//! Parameters are encoded for the server's type rather than refused when
//! the guest's variant differs: an `int32` goes into a `bigint` column, a
//! `str` into a `uuid`, `jsonb`, `numeric` or enum parameter. A value that
//! cannot fit is a `bad-parameter` error naming both types.

use std::error::Error as StdError;
use std::str::FromStr;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use postgres_protocol::types as proto;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

use crate::PgError;

type BoxError = Box<dyn StdError + Sync + Send>;

/// Whether a range bound includes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BoundKind {
    Inclusive,
    Exclusive,
}

/// One end of a range; `None` is unbounded.
pub(crate) type Bound<T> = Option<(T, BoundKind)>;

/// A column's type, as the 4.x interface names it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DataType {
    Boolean,
    Int8,
    Int16,
    Int32,
    Int64,
    Floating32,
    Floating64,
    Str,
    Binary,
    Date,
    Time,
    Datetime,
    Timestamp,
    Uuid,
    Jsonb,
    Decimal,
    RangeInt32,
    RangeInt64,
    RangeDecimal,
    ArrayInt32,
    ArrayInt64,
    ArrayDecimal,
    ArrayStr,
    Interval,
    Other(String),
}

/// A value in either direction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Uint64(u64),
    Floating32(f32),
    Floating64(f64),
    Str(String),
    Binary(Vec<u8>),
    /// (year, month, day)
    Date(i32, u8, u8),
    /// (hour, minute, second, nanosecond)
    Time(u8, u8, u8, u32),
    /// Date and time in UTC.
    Datetime(i32, u8, u8, u8, u8, u8, u32),
    /// Seconds since the Unix epoch.
    Timestamp(i64),
    Uuid(String),
    Jsonb(Vec<u8>),
    Decimal(String),
    RangeInt32(Bound<i32>, Bound<i32>),
    RangeInt64(Bound<i64>, Bound<i64>),
    RangeDecimal(Bound<String>, Bound<String>),
    ArrayInt32(Vec<Option<i32>>),
    ArrayInt64(Vec<Option<i64>>),
    ArrayDecimal(Vec<Option<String>>),
    ArrayStr(Vec<Option<String>>),
    Interval {
        micros: i64,
        days: i32,
        months: i32,
    },
    /// A type no interface variant carries: its binary wire form.
    Unsupported(Vec<u8>),
}

impl Value {
    /// Roughly how many bytes the value costs a guest.
    pub(crate) fn size(&self) -> usize {
        match self {
            Value::Str(s) | Value::Uuid(s) | Value::Decimal(s) => s.len(),
            Value::Binary(b) | Value::Jsonb(b) | Value::Unsupported(b) => b.len(),
            Value::ArrayStr(a) | Value::ArrayDecimal(a) => {
                a.iter().map(|s| s.as_ref().map_or(1, String::len)).sum()
            }
            Value::ArrayInt32(a) => a.len() * 4,
            Value::ArrayInt64(a) => a.len() * 8,
            Value::RangeDecimal(lo, hi) => {
                lo.as_ref().map_or(0, |b| b.0.len()) + hi.as_ref().map_or(0, |b| b.0.len())
            }
            _ => 16,
        }
    }
}

/// The interface type of a server type.
pub(crate) fn data_type(ty: &Type) -> DataType {
    match *ty {
        Type::BOOL => DataType::Boolean,
        Type::CHAR => DataType::Int8,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Floating32,
        Type::FLOAT8 => DataType::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DataType::Str,
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date,
        Type::TIME => DataType::Time,
        Type::TIMESTAMP => DataType::Datetime,
        Type::TIMESTAMPTZ => DataType::Timestamp,
        Type::UUID => DataType::Uuid,
        Type::JSON | Type::JSONB => DataType::Jsonb,
        Type::NUMERIC => DataType::Decimal,
        Type::INT4_RANGE => DataType::RangeInt32,
        Type::INT8_RANGE => DataType::RangeInt64,
        Type::NUM_RANGE => DataType::RangeDecimal,
        Type::INT4_ARRAY => DataType::ArrayInt32,
        Type::INT8_ARRAY => DataType::ArrayInt64,
        Type::NUMERIC_ARRAY => DataType::ArrayDecimal,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => DataType::ArrayStr,
        Type::INTERVAL => DataType::Interval,
        _ => DataType::Other(ty.name().to_string()),
    }
}

/// Decodes column `i` of `row`.
pub(crate) fn decode(row: &Row, i: usize) -> Result<Value, PgError> {
    let ty = row.columns()[i].type_().clone();
    let conversion = |e: tokio_postgres::Error| {
        PgError::ValueConversion(format!(
            "cannot read column `{}` of type {ty}: {}",
            row.columns()[i].name(),
            e.source()
                .map_or_else(|| e.to_string(), ToString::to_string)
        ))
    };
    macro_rules! get {
        ($t:ty, $f:expr) => {
            match row.try_get::<_, Option<$t>>(i).map_err(conversion)? {
                Some(v) => $f(v),
                None => Value::Null,
            }
        };
    }
    Ok(match ty {
        Type::BOOL => get!(bool, Value::Boolean),
        Type::CHAR => get!(i8, Value::Int8),
        Type::INT2 => get!(i16, Value::Int16),
        Type::INT4 => get!(i32, Value::Int32),
        Type::INT8 => get!(i64, Value::Int64),
        Type::FLOAT4 => get!(f32, Value::Floating32),
        Type::FLOAT8 => get!(f64, Value::Floating64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get!(String, Value::Str),
        Type::BYTEA => get!(Vec<u8>, Value::Binary),
        Type::DATE => get!(NaiveDate, date),
        Type::TIME => get!(NaiveTime, time),
        Type::TIMESTAMP => get!(NaiveDateTime, datetime),
        Type::TIMESTAMPTZ => get!(DateTime<Utc>, |v: DateTime<Utc>| datetime(v.naive_utc())),
        Type::UUID => get!(uuid::Uuid, |v: uuid::Uuid| Value::Uuid(v.to_string())),
        Type::JSON | Type::JSONB => get!(serde_json::Value, |v: serde_json::Value| {
            Value::Jsonb(serde_json::to_vec(&v).unwrap_or_default())
        }),
        Type::NUMERIC => get!(Numeric, |v: Numeric| Value::Decimal(v.0)),
        Type::INT4_RANGE => get!(Range<i32>, |r: Range<i32>| Value::RangeInt32(r.0, r.1)),
        Type::INT8_RANGE => get!(Range<i64>, |r: Range<i64>| Value::RangeInt64(r.0, r.1)),
        Type::NUM_RANGE => get!(Range<Numeric>, |r: Range<Numeric>| Value::RangeDecimal(
            r.0.map(|(v, k)| (v.0, k)),
            r.1.map(|(v, k)| (v.0, k))
        )),
        Type::INT4_ARRAY => get!(Vec<Option<i32>>, Value::ArrayInt32),
        Type::INT8_ARRAY => get!(Vec<Option<i64>>, Value::ArrayInt64),
        Type::NUMERIC_ARRAY => get!(Vec<Option<Numeric>>, |v: Vec<Option<Numeric>>| {
            Value::ArrayDecimal(v.into_iter().map(|n| n.map(|n| n.0)).collect())
        }),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => {
            get!(Vec<Option<String>>, Value::ArrayStr)
        }
        Type::INTERVAL => get!(Interval, |v: Interval| Value::Interval {
            micros: v.micros,
            days: v.days,
            months: v.months
        }),
        _ => get!(Raw, |v: Raw| Value::Unsupported(v.0)),
    })
}

fn date(v: NaiveDate) -> Value {
    Value::Date(v.year(), v.month() as u8, v.day() as u8)
}

fn time(v: NaiveTime) -> Value {
    Value::Time(
        v.hour() as u8,
        v.minute() as u8,
        v.second() as u8,
        v.nanosecond(),
    )
}

fn datetime(v: NaiveDateTime) -> Value {
    Value::Datetime(
        v.year(),
        v.month() as u8,
        v.day() as u8,
        v.hour() as u8,
        v.minute() as u8,
        v.second() as u8,
        v.nanosecond(),
    )
}

/// Any type's binary form, unread.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A `numeric` in base 10, exactly (not limited to 28 digits, and `NaN`
/// and the infinities as PostgreSQL spells them).
#[derive(Debug)]
struct Numeric(String);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Numeric(numeric_to_string(raw)?))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

impl ToSql for Numeric {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        numeric_from_str(&self.0, out)?;
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

/// The binary `numeric`: ndigits, weight, sign, dscale (all 16-bit), then
/// base-10000 digits, the first weighted 10000^weight.
fn numeric_to_string(raw: &[u8]) -> Result<String, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i32;
    let sign = word(2)?;
    let dscale = word(3)? as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<u16>, _>>()?;
    let mut int_part = String::new();
    for w in 0..=weight.max(-1) {
        let d = digits.get(w as usize).copied().unwrap_or(0);
        if int_part.is_empty() {
            if d != 0 {
                int_part = d.to_string();
            }
        } else {
            int_part.push_str(&format!("{d:04}"));
        }
    }
    if int_part.is_empty() {
        int_part.push('0');
    }
    let mut frac = String::new();
    let mut position = weight + 1;
    while frac.len() < dscale {
        let d = if position < 0 {
            0
        } else {
            digits.get(position as usize).copied().unwrap_or(0)
        };
        frac.push_str(&format!("{d:04}"));
        position += 1;
    }
    frac.truncate(dscale);
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    out.push_str(&int_part);
    if dscale > 0 {
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

fn numeric_from_str(s: &str, out: &mut BytesMut) -> Result<(), BoxError> {
    let s = s.trim();
    let special = match s.to_ascii_lowercase().as_str() {
        "nan" => Some(0xC000u16),
        "infinity" | "+infinity" | "inf" => Some(0xD000),
        "-infinity" | "-inf" => Some(0xF000),
        _ => None,
    };
    if let Some(sign) = special {
        for w in [0u16, 0, sign, 0] {
            out.put_u16(w);
        }
        return Ok(());
    }
    let invalid = || -> BoxError { format!("`{s}` is not a decimal number").into() };
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int_str, frac_str) = body.split_once('.').unwrap_or((body, ""));
    if (int_str.is_empty() && frac_str.is_empty())
        || !int_str.bytes().all(|b| b.is_ascii_digit())
        || !frac_str.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let int_str = int_str.trim_start_matches('0');
    let dscale = u16::try_from(frac_str.len()).map_err(|_| invalid())?;
    // Pad the integer part on the left and the fraction on the right to
    // whole groups of four digits.
    let int_pad = (4 - int_str.len() % 4) % 4;
    let frac_pad = (4 - frac_str.len() % 4) % 4;
    let all: String = "0".repeat(int_pad) + int_str + frac_str + &"0".repeat(frac_pad);
    let mut groups: Vec<u16> = all
        .as_bytes()
        .chunks(4)
        .map(|c| {
            std::str::from_utf8(c)
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    let mut weight = ((int_pad + int_str.len()) / 4) as i32 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.put_u16(u16::try_from(groups.len()).map_err(|_| invalid())?);
    out.put_i16(i16::try_from(weight).map_err(|_| invalid())?);
    out.put_u16(if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    });
    out.put_u16(dscale);
    for g in groups {
        out.put_u16(g);
    }
    Ok(())
}

/// A range of `T`; empty ranges read as `(None, None)`.
struct Range<T>(Bound<T>, Bound<T>);

impl<'a, T: FromSql<'a>> FromSql<'a> for Range<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let Kind::Range(element) = ty.kind() else {
            return Err(format!("{ty} is not a range type").into());
        };
        let bound = |b: proto::RangeBound<Option<&'a [u8]>>| -> Result<Bound<T>, BoxError> {
            Ok(match b {
                proto::RangeBound::Inclusive(Some(v)) => {
                    Some((T::from_sql(element, v)?, BoundKind::Inclusive))
                }
                proto::RangeBound::Exclusive(Some(v)) => {
                    Some((T::from_sql(element, v)?, BoundKind::Exclusive))
                }
                _ => None,
            })
        };
        match proto::range_from_sql(raw)? {
            proto::Range::Empty => Ok(Range(None, None)),
            proto::Range::Nonempty(lo, hi) => Ok(Range(bound(lo)?, bound(hi)?)),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Range(_))
    }
}

fn range_to_sql<T>(
    lo: &Bound<T>,
    hi: &Bound<T>,
    element: &Type,
    out: &mut BytesMut,
) -> Result<(), BoxError>
where
    T: ToSql,
{
    fn encode<T: ToSql>(
        b: &Bound<T>,
        element: &Type,
        buf: &mut BytesMut,
    ) -> Result<proto::RangeBound<postgres_protocol::IsNull>, BoxError> {
        match b {
            None => Ok(proto::RangeBound::Unbounded),
            Some((v, kind)) => {
                v.to_sql(element, buf)?;
                Ok(match kind {
                    BoundKind::Inclusive => {
                        proto::RangeBound::Inclusive(postgres_protocol::IsNull::No)
                    }
                    BoundKind::Exclusive => {
                        proto::RangeBound::Exclusive(postgres_protocol::IsNull::No)
                    }
                })
            }
        }
    }
    proto::range_to_sql(
        |buf| encode(lo, element, buf),
        |buf| encode(hi, element, buf),
        out,
    )
}

/// `interval`: microseconds, days, months.
struct Interval {
    micros: i64,
    days: i32,
    months: i32,
}

impl<'a> FromSql<'a> for Interval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        if raw.len() != 16 {
            return Err("an interval is 16 bytes".into());
        }
        let mut micros = [0u8; 8];
        micros.copy_from_slice(&raw[..8]);
        let mut days = [0u8; 4];
        days.copy_from_slice(&raw[8..12]);
        let mut months = [0u8; 4];
        months.copy_from_slice(&raw[12..]);
        Ok(Interval {
            micros: i64::from_be_bytes(micros),
            days: i32::from_be_bytes(days),
            months: i32::from_be_bytes(months),
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let mismatch = || -> BoxError {
            format!(
                "cannot send {} as a parameter of type {ty}",
                self.variant_name()
            )
            .into()
        };
        match self {
            Value::Null => return Ok(IsNull::Yes),
            Value::Boolean(b) => return checked(&b, ty, out),
            Value::Int8(i) => {
                return integer_to_sql(i64::from(*i), ty, out).ok_or_else(mismatch)?;
            }
            Value::Int16(i) => {
                return integer_to_sql(i64::from(*i), ty, out).ok_or_else(mismatch)?;
            }
            Value::Int32(i) => {
                return integer_to_sql(i64::from(*i), ty, out).ok_or_else(mismatch)?;
            }
            Value::Int64(i) => return integer_to_sql(*i, ty, out).ok_or_else(mismatch)?,
            Value::Uint64(u) => {
                let i = i64::try_from(*u).map_err(|_| mismatch())?;
                return integer_to_sql(i, ty, out).ok_or_else(mismatch)?;
            }
            Value::Floating32(f) => match *ty {
                Type::FLOAT4 => return checked(&f, ty, out),
                Type::FLOAT8 => return checked(&f64::from(*f), ty, out),
                Type::NUMERIC => return checked(&Numeric(f.to_string()), ty, out),
                _ => {}
            },
            Value::Floating64(f) => match *ty {
                Type::FLOAT8 => return checked(&f, ty, out),
                Type::FLOAT4 => return checked(&(*f as f32), ty, out),
                Type::NUMERIC => return checked(&Numeric(f.to_string()), ty, out),
                _ => {}
            },
            Value::Str(s) => match *ty {
                Type::UUID => return checked(&uuid::Uuid::from_str(s)?, ty, out),
                Type::JSON | Type::JSONB => {
                    return serde_json::from_str::<serde_json::Value>(s)?.to_sql(ty, out);
                }
                Type::NUMERIC => return checked(&Numeric(s.clone()), ty, out),
                Type::BYTEA => return checked(&s.as_bytes(), ty, out),
                // Text, varchar, citext, enum labels…: the binary form of a
                // text-like type is its UTF-8 bytes.
                _ if is_text_like(ty) || matches!(ty.kind(), Kind::Enum(_)) => {
                    out.put_slice(s.as_bytes());
                    return Ok(IsNull::No);
                }
                _ => {}
            },
            Value::Binary(b) => match *ty {
                Type::BYTEA => return checked(&b, ty, out),
                Type::JSONB => {
                    out.put_u8(1);
                    out.put_slice(b);
                    return Ok(IsNull::No);
                }
                Type::JSON => {
                    out.put_slice(b);
                    return Ok(IsNull::No);
                }
                _ => {}
            },
            Value::Date(y, m, d) => {
                let date = NaiveDate::from_ymd_opt(*y, u32::from(*m), u32::from(*d))
                    .ok_or_else(|| format!("{y}-{m}-{d} is not a date"))?;
                return checked(&date, ty, out);
            }
            Value::Time(h, m, s, ns) => {
                let time =
                    NaiveTime::from_hms_nano_opt(u32::from(*h), u32::from(*m), u32::from(*s), *ns)
                        .ok_or_else(|| format!("{h}:{m}:{s}.{ns} is not a time of day"))?;
                return checked(&time, ty, out);
            }
            Value::Datetime(y, mo, d, h, mi, s, ns) => {
                let date = NaiveDate::from_ymd_opt(*y, u32::from(*mo), u32::from(*d))
                    .and_then(|date| {
                        date.and_hms_nano_opt(u32::from(*h), u32::from(*mi), u32::from(*s), *ns)
                    })
                    .ok_or_else(|| "the datetime is not a valid date and time".to_string())?;
                return match *ty {
                    Type::TIMESTAMPTZ => checked(&date.and_utc(), ty, out),
                    _ => checked(&date, ty, out),
                };
            }
            Value::Timestamp(secs) => {
                let at = DateTime::<Utc>::from_timestamp(*secs, 0)
                    .ok_or_else(|| format!("{secs} is out of range for a timestamp"))?;
                return match *ty {
                    Type::TIMESTAMP => checked(&at.naive_utc(), ty, out),
                    Type::INT8 => checked(&secs, ty, out),
                    _ => checked(&at, ty, out),
                };
            }
            Value::Uuid(s) => match *ty {
                Type::UUID => return checked(&uuid::Uuid::from_str(s)?, ty, out),
                _ if is_text_like(ty) => return checked(&s, ty, out),
                _ => {}
            },
            Value::Jsonb(b) => match *ty {
                Type::JSONB => {
                    out.put_u8(1);
                    out.put_slice(b);
                    return Ok(IsNull::No);
                }
                Type::JSON => {
                    out.put_slice(b);
                    return Ok(IsNull::No);
                }
                _ if is_text_like(ty) => {
                    out.put_slice(b);
                    return Ok(IsNull::No);
                }
                _ => {}
            },
            Value::Decimal(s) => match *ty {
                Type::NUMERIC => return checked(&Numeric(s.clone()), ty, out),
                Type::FLOAT8 => return checked(&f64::from_str(s)?, ty, out),
                Type::FLOAT4 => return checked(&f32::from_str(s)?, ty, out),
                _ if is_text_like(ty) => return checked(&s, ty, out),
                _ => {}
            },
            Value::RangeInt32(lo, hi) => {
                if let Kind::Range(element) = ty.kind() {
                    range_to_sql(lo, hi, element, out)?;
                    return Ok(IsNull::No);
                }
            }
            Value::RangeInt64(lo, hi) => {
                if let Kind::Range(element) = ty.kind() {
                    range_to_sql(lo, hi, element, out)?;
                    return Ok(IsNull::No);
                }
            }
            Value::RangeDecimal(lo, hi) => {
                if let Kind::Range(element) = ty.kind() {
                    let num = |b: &Bound<String>| b.as_ref().map(|(v, k)| (Numeric(v.clone()), *k));
                    range_to_sql(&num(lo), &num(hi), element, out)?;
                    return Ok(IsNull::No);
                }
            }
            Value::ArrayInt32(a) => match *ty {
                Type::INT8_ARRAY => {
                    let wide: Vec<Option<i64>> = a.iter().map(|v| v.map(i64::from)).collect();
                    return checked(&wide, ty, out);
                }
                _ => return checked(&a, ty, out),
            },
            Value::ArrayInt64(a) => return checked(&a, ty, out),
            Value::ArrayDecimal(a) => {
                let nums: Vec<Option<Numeric>> = a.iter().map(|v| v.clone().map(Numeric)).collect();
                return checked(&nums, ty, out);
            }
            Value::ArrayStr(a) => return checked(&a, ty, out),
            Value::Interval {
                micros,
                days,
                months,
            } => {
                if *ty == Type::INTERVAL {
                    out.put_i64(*micros);
                    out.put_i32(*days);
                    out.put_i32(*months);
                    return Ok(IsNull::No);
                }
            }
            Value::Unsupported(b) => {
                out.put_slice(b);
                return Ok(IsNull::No);
            }
        }
        Err(mismatch())
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl Value {
    fn variant_name(&self) -> &'static str {
        match self {
            Value::Null => "db-null",
            Value::Boolean(_) => "boolean",
            Value::Int8(_) => "int8",
            Value::Int16(_) => "int16",
            Value::Int32(_) => "int32",
            Value::Int64(_) => "int64",
            Value::Uint64(_) => "an unsigned integer",
            Value::Floating32(_) => "floating32",
            Value::Floating64(_) => "floating64",
            Value::Str(_) => "str",
            Value::Binary(_) => "binary",
            Value::Date(..) => "date",
            Value::Time(..) => "time",
            Value::Datetime(..) => "datetime",
            Value::Timestamp(_) => "timestamp",
            Value::Uuid(_) => "uuid",
            Value::Jsonb(_) => "jsonb",
            Value::Decimal(_) => "decimal",
            Value::RangeInt32(..) => "range-int32",
            Value::RangeInt64(..) => "range-int64",
            Value::RangeDecimal(..) => "range-decimal",
            Value::ArrayInt32(_) => "array-int32",
            Value::ArrayInt64(_) => "array-int64",
            Value::ArrayDecimal(_) => "array-decimal",
            Value::ArrayStr(_) => "array-str",
            Value::Interval { .. } => "interval",
            Value::Unsupported(_) => "unsupported",
        }
    }
}

/// Encodes `v` if its Rust type accepts the server's type. The
/// postgres-types encoders assume they were asked only for types they
/// accept (an array encoder panics on a scalar type), so a guest's
/// mismatched parameter must be caught here.
fn checked<T: ToSql>(v: &T, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    if !T::accepts(ty) {
        return Err(format!("cannot send this value as a parameter of type {ty}").into());
    }
    v.to_sql(ty, out)
}

fn is_text_like(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    ) || ty.name() == "citext"
}

/// An integer into whichever integer (or numeric, float) type the server
/// wants; `None` when the type is not numeric, an error when it does not fit.
fn integer_to_sql(i: i64, ty: &Type, out: &mut BytesMut) -> Option<Result<IsNull, BoxError>> {
    let too_big = || -> BoxError { format!("{i} does not fit in a parameter of type {ty}").into() };
    Some(match *ty {
        Type::CHAR => i8::try_from(i)
            .map_err(|_| too_big())
            .and_then(|v| v.to_sql(ty, out)),
        Type::INT2 => i16::try_from(i)
            .map_err(|_| too_big())
            .and_then(|v| v.to_sql(ty, out)),
        Type::INT4 => i32::try_from(i)
            .map_err(|_| too_big())
            .and_then(|v| v.to_sql(ty, out)),
        Type::INT8 => i.to_sql(ty, out),
        Type::FLOAT4 => (i as f32).to_sql(ty, out),
        Type::FLOAT8 => (i as f64).to_sql(ty, out),
        Type::NUMERIC => Numeric(i.to_string()).to_sql(ty, out),
        Type::OID => u32::try_from(i)
            .map_err(|_| too_big())
            .and_then(|v| v.to_sql(ty, out)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decimal strings survive the binary `numeric` form unchanged.
    #[test]
    fn numeric_round_trips() {
        for s in [
            "0",
            "1",
            "-1",
            "12345.6789",
            "0.0001",
            "100000000",
            "-0.5",
            "3.14159265358979323846264338327950288",
            "99999999999999999999999999999999999999.5",
            "10000",
            "0.10",
            "NaN",
            "Infinity",
            "-Infinity",
        ] {
            let mut buf = BytesMut::new();
            numeric_from_str(s, &mut buf).expect("encodes");
            assert_eq!(numeric_to_string(&buf).expect("decodes"), s, "{s}");
        }
    }

    #[test]
    fn numeric_rejects_non_numbers() {
        for s in ["", "abc", "1.2.3", "1e5", "--1"] {
            assert!(numeric_from_str(s, &mut BytesMut::new()).is_err(), "{s}");
        }
    }
}
