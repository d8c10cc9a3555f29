//! What kind of line a phone number is: a mobile takes SMS, a fixed line
//! only calls, and special services (premium rate, shared cost, free
//! phone, pagers, personal numbers) get neither codes nor calls from the
//! signup: SMS pumping and call fraud aim at exactly those.
//!
//! The numbering plans are libphonenumber's metadata (the `phonenumber`
//! crate, kept up to date with each country's regulator), not a table of
//! prefixes of our own.

use phonenumber::Type;
use serde::Serialize;

/// The kind of line of a phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    /// A mobile number: SMS and calls.
    Mobile,
    /// A fixed (landline or home VoIP) number: calls only, never SMS.
    Fixed,
    /// A plan where mobile and fixed numbers share ranges (the US, ...):
    /// SMS may work; nothing tells.
    MobileOrFixed,
    /// Premium rate, shared cost, free phone, pagers, personal numbers,
    /// numbers outside every range, text that is not a number.
    Special,
}

impl Line {
    /// Whether an SMS can reach this line.
    pub fn takes_sms(self) -> bool {
        matches!(self, Line::Mobile | Line::MobileOrFixed)
    }

    /// Whether a voice call can reach this line.
    pub fn takes_calls(self) -> bool {
        !matches!(self, Line::Special)
    }
}

/// The kind of line of an E.164 number (`+32470123456`).
pub fn line(e164: &str) -> Line {
    let Ok(number) = phonenumber::parse(None, e164) else {
        return Line::Special;
    };
    match number.number_type(&phonenumber::metadata::DATABASE) {
        Type::Mobile => Line::Mobile,
        // Home VoIP numbers (France's 09, the Netherlands' 085) ring a
        // phone at home: a fixed line.
        Type::FixedLine | Type::Voip => Line::Fixed,
        Type::FixedLineOrMobile => Line::MobileOrFixed,
        _ => Line::Special,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lines_of_the_accepted_countries() {
        for (number, want) in [
            ("+32470123456", Line::Mobile),
            ("+32456123456", Line::Mobile),
            ("+3225551234", Line::Fixed),
            // Liège's area code is 4 too: eight digits, a fixed line.
            ("+3242222222", Line::Fixed),
            ("+3290012345", Line::Special),
            ("+3270233000", Line::Special),
            ("+3280012345", Line::Special),
            ("+31612345678", Line::Mobile),
            ("+31201234567", Line::Fixed),
            ("+31661234567", Line::Special),
            ("+33612345678", Line::Mobile),
            ("+33123456789", Line::Fixed),
            ("+33912345678", Line::Fixed),
            ("+33892123456", Line::Special),
            ("+4915112345678", Line::Mobile),
            ("+493012345678", Line::Fixed),
            ("+4990012345678", Line::Special),
            ("+352621123456", Line::Mobile),
            ("+35222123456", Line::Fixed),
            ("+12015550123", Line::MobileOrFixed),
            ("not a number", Line::Special),
            ("", Line::Special),
        ] {
            assert_eq!(line(number), want, "{number}");
        }
    }

    #[test]
    fn only_mobiles_take_sms_and_special_numbers_take_nothing() {
        assert!(Line::Mobile.takes_sms() && Line::Mobile.takes_calls());
        assert!(!Line::Fixed.takes_sms() && Line::Fixed.takes_calls());
        assert!(!Line::Special.takes_sms() && !Line::Special.takes_calls());
    }

    proptest! {
        /// Against the Belgian plan as the regulator (BIPT) writes it: nine
        /// national digits starting 45 to 49 are mobile; eight digits are
        /// never a mobile, and those of the large zones (02 Brussels, 03
        /// Antwerp, 04 Liège, 05x, 09 Ghent) are fixed; 070, 078, 0800
        /// and 090x are special services.
        #[test]
        fn belgian_numbers_follow_the_regulators_plan(
            first in 1u8..=9,
            rest in 0u32..10_000_000,
            nine in proptest::bool::ANY,
        ) {
            let national = if nine {
                format!("4{first}{rest:07}")
            } else {
                format!("{first}{rest:07}")
            };
            let got = line(&format!("+32{national}"));
            if nine {
                if first >= 5 {
                    prop_assert_eq!(got, Line::Mobile, "{}", national);
                } else {
                    prop_assert_eq!(got, Line::Special, "{}: no such mobile range", national);
                }
            } else {
                prop_assert_ne!(got, Line::Mobile, "{}: eight digits are never a mobile", national);
                let special = ["70", "78", "800", "90"].iter().any(|p| national.starts_with(p));
                if special {
                    prop_assert_eq!(got, Line::Special, "{}", national);
                }
                let geographic = ["2", "3", "42", "43", "5", "92", "93", "94"]
                    .iter()
                    .any(|p| national.starts_with(p))
                    && !["20", "21", "29", "30", "31", "39"].iter().any(|p| national.starts_with(p));
                if geographic {
                    prop_assert_eq!(got, Line::Fixed, "{}", national);
                }
            }
        }
    }
}
