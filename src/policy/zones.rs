//! Where a destination is: E.164 number → ISO 3166 region (libphonenumber's metadata, through
//! [`super::number`]) → the IANA time zones of that region.
//!
//! Owns the country-to-zone table. It is the IANA tz database's own `zone.tab`, embedded
//! verbatim from Debian's `tzdata` package (2025b-0+deb12u2, `/usr/share/zoneinfo/zone.tab`),
//! with `iso3166.tab` from the same package for country names. To update: copy both files
//! from a newer `tzdata` over `src/policy/zone.tab` and `src/policy/iso3166.tab`; the tests
//! check that every zone in the table is known to `chrono-tz`. Must never hold a hand-typed
//! zone or country: only the IANA files.
//!
//! Why `zone.tab` and not `zone1970.tab`: `zone1970.tab` merges countries whose clocks have
//! agreed since 1970 into one row with a representative zone (Sweden's row is
//! `Europe/Berlin`), while `zone.tab` has one row per country and clock area (Sweden:
//! `Europe/Stockholm`), which is what "all the zones of the destination's country" needs and
//! what logs should name. Both come from the same IANA release.
//!
//! A country with several zones (US, Russia, Brazil, Australia…) returns all of them; the
//! window rule holds such destinations to the intersection over every zone.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono_tz::Tz;

/// IANA `zone.tab` (tab-separated: country code, coordinates, zone, comment), verbatim.
const ZONE_TAB: &str = include_str!("zone.tab");
/// IANA `iso3166.tab` (tab-separated: country code, name), verbatim.
const ISO3166_TAB: &str = include_str!("iso3166.tab");

static ZONES: LazyLock<HashMap<&'static str, Vec<Tz>>> = LazyLock::new(|| {
    let mut map: HashMap<&'static str, Vec<Tz>> = HashMap::new();
    for (region, zone) in rows(ZONE_TAB).filter_map(|c| Some((*c.first()?, *c.get(2)?))) {
        // A zone the compiled-in chrono-tz does not know is skipped; the tests fail on one.
        if let Ok(tz) = zone.parse::<Tz>() {
            map.entry(region).or_default().push(tz);
        }
    }
    map
});

static NAMES: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
    rows(ISO3166_TAB)
        .filter_map(|c| Some((*c.first()?, *c.get(1)?)))
        .collect()
});

/// The data rows of an IANA `.tab` file, split at tabs.
fn rows(text: &'static str) -> impl Iterator<Item = Vec<&'static str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
}

/// The IANA zones of an ISO 3166 region (`"SE"` → `[Europe/Stockholm]`), in `zone.tab`
/// order; empty for a region the table does not list (and for `"001"`, libphonenumber's
/// non-geographic numbers).
pub fn zones_of_region(region: &str) -> &'static [Tz] {
    ZONES.get(region).map_or(&[], Vec::as_slice)
}

/// The zones of a destination's country (`"+46…"` or `"46…"`); empty when the number's
/// country cannot be told (unknown country code, non-geographic number).
pub fn zones_of_number(e164: &str) -> &'static [Tz] {
    super::number::region_of(e164).map_or(&[], zones_of_region)
}

/// The English name of an ISO 3166 region (`"SE"` → `"Sweden"`), from IANA `iso3166.tab`.
pub fn country_name(region: &str) -> Option<&'static str> {
    NAMES.get(region).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::{Los_Angeles, New_York};
    use chrono_tz::Asia::{Kamchatka, Vladivostok};
    use chrono_tz::Europe::{Kaliningrad, Moscow, Stockholm};

    #[test]
    fn every_zone_of_the_iana_table_is_known_to_chrono_tz() {
        let listed = rows(ZONE_TAB).count();
        let known: usize = ZONES.values().map(Vec::len).sum();
        assert_eq!(listed, known, "zone.tab names a zone chrono-tz lacks");
        assert!(listed > 400, "{listed} rows");
    }

    #[test]
    fn sweden_has_one_zone() {
        assert_eq!(zones_of_region("SE"), &[Stockholm]);
        assert_eq!(zones_of_number("+46701234567"), &[Stockholm]);
        assert_eq!(zones_of_number("46701234567"), &[Stockholm]);
    }

    #[test]
    fn the_us_and_russia_have_all_their_zones() {
        let us = zones_of_number("+12125550123");
        assert!(
            us.contains(&New_York) && us.contains(&Los_Angeles),
            "{us:?}"
        );
        assert!(us.contains(&chrono_tz::Pacific::Honolulu), "{us:?}");
        assert!(us.len() >= 29, "{}", us.len());
        let ru = zones_of_number("+74951234567");
        for z in [Kaliningrad, Moscow, Vladivostok, Kamchatka] {
            assert!(ru.contains(&z), "{z} missing from {ru:?}");
        }
        assert!(ru.len() >= 20, "{}", ru.len());
        // Brazil and Australia too (São Paulo mobile, Sydney mobile).
        let br = zones_of_number("+5511912345678");
        assert!(
            br.contains(&chrono_tz::America::Sao_Paulo) && br.len() > 10,
            "{br:?}"
        );
        let au = zones_of_number("+61412345678");
        assert!(
            au.contains(&chrono_tz::Australia::Perth) && au.len() > 5,
            "{au:?}"
        );
    }

    #[test]
    fn unknown_and_non_geographic_numbers_have_no_zone() {
        assert!(zones_of_number("+99912345678").is_empty());
        assert!(zones_of_number("+80012345678").is_empty());
        assert!(zones_of_region("001").is_empty());
    }

    #[test]
    fn country_names_come_from_iso3166_tab() {
        assert_eq!(country_name("SE"), Some("Sweden"));
        assert_eq!(country_name("US"), Some("United States"));
        assert_eq!(country_name("XX"), None);
    }
}
