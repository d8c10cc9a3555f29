//! Citizens' contacts are personal data: shown masked (`+32 47• ••• •56`,
//! `c•••@example.be`) to everyone who does not hold the `contacts` right.

const DOT: char = '•';

/// A phone number or e-mail address with most of it hidden: enough to
/// tell two recipients apart in a list, not enough to call or write them.
pub fn mask(contact: &str) -> String {
    if let Some((local, domain)) = contact.rsplit_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}{DOT}{DOT}{DOT}@{domain}");
    }
    mask_phone(contact)
}

/// `+32470123456` → `+32 47• ••• •56`: the country code, the first two and
/// the last two digits of the national number, the rest hidden, in
/// groups of three.
fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let country_len = phone
        .parse::<phonenumber::PhoneNumber>()
        .ok()
        .map_or(2, |p| p.code().value().to_string().len())
        .min(digits.len());
    let (country, national) = digits.split_at(country_len);
    let n = national.len();
    let shown: Vec<char> = national
        .iter()
        .enumerate()
        .map(|(i, d)| {
            if i < 2 || i + 2 >= n && n > 5 {
                *d
            } else {
                DOT
            }
        })
        .collect();
    let groups: Vec<String> = shown.chunks(3).map(|c| c.iter().collect()).collect();
    format!(
        "+{} {}",
        country.iter().collect::<String>(),
        groups.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn contacts_are_masked_as_the_contract_shows() {
        assert_eq!(mask("+32470123456"), "+32 47• ••• •56");
        assert_eq!(mask("c.dupont@example.be"), "c•••@example.be");
        assert_eq!(mask("+3225551234"), "+32 25• ••• 34");
        assert_eq!(mask("+14155550123"), "+1 41• ••• ••2 3");
    }

    proptest! {
        /// Whatever the number, at most four of its national digits show.
        #[test]
        fn at_most_four_national_digits_show(n in 100_000u64..99_999_999_999) {
            let phone = format!("+32{n}");
            let masked = mask(&phone);
            let national_shown = masked
                .split_once(' ')
                .map(|(_, rest)| rest.chars().filter(char::is_ascii_digit).count())
                .unwrap_or(0);
            prop_assert!(national_shown <= 4, "{masked}");
            prop_assert!(masked.contains('•'));
        }

        #[test]
        fn an_address_shows_its_first_letter_and_domain_only(local in "[a-z0-9.]{1,30}", domain in "[a-z]{1,10}\\.be") {
            let masked = mask(&format!("{local}@{domain}"));
            prop_assert_eq!(masked.chars().count(), 1 + 3 + 1 + domain.len());
            let tail = format!("@{domain}");
            prop_assert!(masked.ends_with(&tail));
        }
    }
}
