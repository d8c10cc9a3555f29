//! SMS encoding and segment counting (3GPP TS 23.038 GSM 7-bit default alphabet vs UCS-2).

/// Characters of the GSM 7-bit default alphabet (one septet each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters of the extension table (an escape plus one septet: two each).
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmsEncoding {
    Gsm7,
    Ucs2,
}

/// How a text travels as SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SmsInfo {
    pub encoding: SmsEncoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    pub segments: usize,
}

fn gsm_width(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Counts the segments a text needs. A single SMS holds 160 septets or 70
/// UCS-2 units; a concatenated one 153 or 67 per part, and an escape pair or a
/// surrogate pair is never split between parts.
pub fn analyse(text: &str) -> SmsInfo {
    let gsm: Option<Vec<usize>> = text.chars().map(gsm_width).collect();
    let (encoding, widths, single, multi) = match gsm {
        Some(w) => (SmsEncoding::Gsm7, w, 160, 153),
        None => (
            SmsEncoding::Ucs2,
            text.chars().map(char::len_utf16).collect(),
            70,
            67,
        ),
    };
    let units: usize = widths.iter().sum();
    let segments = if units <= single {
        1
    } else {
        let (mut segments, mut used) = (1, 0);
        for w in widths {
            if used + w > multi {
                segments += 1;
                used = 0;
            }
            used += w;
        }
        segments
    };
    SmsInfo {
        encoding,
        units,
        segments,
    }
}

/// The first character of a text that forces UCS-2, if any.
pub fn first_non_gsm(text: &str) -> Option<char> {
    text.chars().find(|c| gsm_width(*c).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_fits_160_septets_in_one_segment() {
        let s = "a".repeat(160);
        assert_eq!(
            analyse(&s),
            SmsInfo {
                encoding: SmsEncoding::Gsm7,
                units: 160,
                segments: 1
            }
        );
        assert_eq!(analyse(&"a".repeat(161)).segments, 2);
        assert_eq!(analyse(&"a".repeat(306)).segments, 2);
        assert_eq!(analyse(&"a".repeat(307)).segments, 3);
    }

    #[test]
    fn extension_characters_count_double_and_are_not_split() {
        assert_eq!(analyse("€").units, 2);
        assert_eq!(analyse(&"€".repeat(80)).segments, 1);
        // 152 septets then a euro sign: the pair moves to the next part.
        let s = format!("{}{}{}", "a".repeat(152), "€", "a".repeat(10));
        assert_eq!(analyse(&s).segments, 2);
        assert_eq!(analyse(&s).units, 164);
    }

    #[test]
    fn french_circumflex_forces_ucs2() {
        let info = analyse("Fermez les fenêtres");
        assert_eq!(info.encoding, SmsEncoding::Ucs2);
        assert_eq!(first_non_gsm("Fermez les fenêtres"), Some('ê'));
        assert_eq!(analyse(&"ê".repeat(70)).segments, 1);
        assert_eq!(analyse(&"ê".repeat(71)).segments, 2);
        assert_eq!(analyse(&"ê".repeat(135)).segments, 3);
    }

    #[test]
    fn dutch_and_german_umlauts_stay_gsm() {
        assert_eq!(
            analyse("Schließen Sie Fenster und Türen").encoding,
            SmsEncoding::Gsm7
        );
        assert_eq!(analyse("Sluit ramen en deuren").encoding, SmsEncoding::Gsm7);
    }
}
