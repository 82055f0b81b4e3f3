//! Go's `time.Time` binary encoding (what `GobEncode`/`MarshalBinary` produce, and therefore
//! what `metav1.Time` travels as, spec 50 §6.6) and its RFC 3339 rendering for JSON.

/// Seconds from 0001-01-01T00:00:00Z (Go's internal epoch) to the Unix epoch.
const UNIX_TO_INTERNAL: i64 = 62_135_596_800;

/// An instant decoded from Go's binary time encoding. The zone offset is dropped: JSON renders
/// Kubernetes times in UTC, and both "UTC" and "Local at +00:00" arrive here alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoTime {
    pub unix_seconds: i64,
    pub nanos: u32,
}

impl GoTime {
    /// Decodes versions 1 (15 bytes) and 2 (16 bytes, sub-minute zone offsets).
    pub fn from_binary(bytes: &[u8]) -> Option<GoTime> {
        let (&version, rest) = bytes.split_first()?;
        let expected = match version {
            1 => 14,
            2 => 15,
            _ => return None,
        };
        if rest.len() != expected {
            return None;
        }
        let seconds = i64::from_be_bytes(rest.get(0..8)?.try_into().ok()?);
        let nanos = i32::from_be_bytes(rest.get(8..12)?.try_into().ok()?);
        let nanos = u32::try_from(nanos).ok().filter(|n| *n < 1_000_000_000)?;
        Some(GoTime {
            unix_seconds: seconds.checked_sub(UNIX_TO_INTERNAL)?,
            nanos,
        })
    }

    /// Version-1 encoding in UTC (offset -1), as Go writes a `time.Time` in the UTC location.
    pub fn to_binary(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(15);
        out.push(1);
        out.extend_from_slice(&(self.unix_seconds + UNIX_TO_INTERNAL).to_be_bytes());
        out.extend_from_slice(&(self.nanos as i32).to_be_bytes());
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    /// Go's zero `time.Time` (year 1): `metav1.Time` renders it as JSON `null`.
    pub fn is_zero(self) -> bool {
        self.unix_seconds == -UNIX_TO_INTERNAL && self.nanos == 0
    }

    /// `2006-01-02T15:04:05Z` (metav1.Time's JSON), or with six fractional digits when
    /// `micros` (metav1.MicroTime). `None` outside years 0..=9999, where Go's JSON fails too.
    pub fn to_rfc3339(self, micros: bool) -> Option<String> {
        let days = self.unix_seconds.div_euclid(86_400);
        let secs_of_day = self.unix_seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let (h, m, s) = (secs_of_day / 3600, secs_of_day / 60 % 60, secs_of_day % 60);
        let date = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
        Some(if micros {
            format!("{date}.{:06}Z", self.nanos / 1000)
        } else {
            format!("{date}Z")
        })
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_go_bytes_and_renders_rfc3339() {
        // time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC).MarshalBinary()
        let bytes = [
            0x01, 0x00, 0x00, 0x00, 0x0e, 0xdd, 0xca, 0x78, 0xd9, 0x07, 0x5b, 0xcd, 0x15, 0xff,
            0xff,
        ];
        let t = GoTime::from_binary(&bytes).unwrap();
        assert_eq!(t.unix_seconds, 1_714_979_289);
        assert_eq!(t.nanos, 123_456_789);
        assert_eq!(t.to_rfc3339(false).unwrap(), "2024-05-06T07:08:09Z");
        assert_eq!(t.to_rfc3339(true).unwrap(), "2024-05-06T07:08:09.123456Z");
        assert_eq!(t.to_binary(), bytes);
    }

    #[test]
    fn calendar_edges() {
        let at = |s| {
            GoTime {
                unix_seconds: s,
                nanos: 0,
            }
            .to_rfc3339(false)
            .unwrap()
        };
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(-1), "1969-12-31T23:59:59Z");
        assert_eq!(at(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(GoTime::from_binary(&[]), None);
        assert_eq!(GoTime::from_binary(&[1, 2, 3]), None);
        assert_eq!(GoTime::from_binary(&[9; 15]), None);
        let zero = GoTime {
            unix_seconds: -UNIX_TO_INTERNAL,
            nanos: 0,
        };
        assert!(GoTime::from_binary(&zero.to_binary()).unwrap().is_zero());
    }
}
