//! The message mix the load tools send (`smppd bench` and the `kannel-load` and `scaling` tools
//! in `tools/`, so every gateway measured gets the same texts in the same order): what operators
//! send most, and the one rule that says which text message number `k` gets. Pure: no I/O.

/// Short GSM (one part), 400 GSM characters (three parts), and Swedish with an emoji and
/// Cyrillic (UCS-2, two parts), in the order of `--mix short=…,long=…,emoji=…`.
pub fn mix_texts() -> [String; 3] {
    [
        "Your code is 482913. It expires in 10 minutes.".to_owned(),
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit. "
            .repeat(8)
            .chars()
            .take(400)
            .collect(),
        format!(
            "Hej! Ditt paket är på väg 📦 {}",
            "Спасибо за заказ. ".repeat(4)
        ),
    ]
}

/// Relative weights of the three texts of [`mix_texts`], as given by `--mix short=…,long=…,emoji=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 3],
}

/// Why a `--mix` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MixError {
    /// An item without `=`.
    #[error("--mix {0:?}: want name=weight")]
    NotNameWeight(String),
    /// A weight that is not a whole number.
    #[error("--mix weight {0:?} is not a whole number")]
    Weight(String),
    /// A name other than short, long, emoji.
    #[error("--mix: unknown kind {0:?} (short, long, emoji)")]
    Kind(String),
    /// Nothing to send.
    #[error("--mix: all weights are 0")]
    AllZero,
}

impl Mix {
    /// Parses `short=80,long=15,emoji=5`; kinds not named weigh 0.
    pub fn parse(s: &str) -> Result<Mix, MixError> {
        let mut weights = [0u32; 3];
        for part in s.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| MixError::NotNameWeight(part.to_owned()))?;
            let v: u32 = v
                .trim()
                .parse()
                .map_err(|_| MixError::Weight(v.to_owned()))?;
            let slot = match k.trim() {
                "short" => 0,
                "long" => 1,
                "emoji" => 2,
                other => return Err(MixError::Kind(other.to_owned())),
            };
            weights[slot] = v;
        }
        if weights.iter().all(|&w| w == 0) {
            return Err(MixError::AllZero);
        }
        Ok(Mix { weights })
    }

    /// The weights, in the order of [`mix_texts`].
    pub fn weights(&self) -> [u32; 3] {
        self.weights
    }

    /// Which text (index into [`mix_texts`]) message number `k` sends: spread evenly by a
    /// multiplicative step, so any prefix of a run has about the mix's proportions. Computed in
    /// 64 bits: no overflow for any count a run can send.
    pub fn kind_of(&self, k: u64) -> usize {
        let [a, b, c] = self.weights.map(u64::from);
        let pick = k.wrapping_mul(7919) % (a + b + c);
        if pick < a {
            0
        } else if pick < a + b {
            1
        } else {
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Mix, MixError, mix_texts};
    use crate::text::{EncodeOptions, encode};

    #[test]
    fn the_mix_is_one_three_and_two_parts() {
        let parts: Vec<usize> = mix_texts()
            .iter()
            .map(|t| {
                encode(t, &EncodeOptions::default(), 1)
                    .expect("encodable")
                    .segments()
                    .count()
            })
            .collect();
        assert_eq!(parts, [1, 3, 2]);
    }

    #[test]
    fn a_mix_parses_and_picks_in_proportion_without_overflow() {
        let m = Mix::parse("short=80, long=15,emoji=5").expect("mix");
        assert_eq!(m.weights(), [80, 15, 5]);
        let mut counts = [0usize; 3];
        for k in 0..1000 {
            counts[m.kind_of(k)] += 1;
        }
        assert_eq!(counts, [800, 150, 50]);
        // Far past where a 32-bit product overflows (k * 7919 > u32::MAX from k = 542,366).
        assert!(m.kind_of(10_000_000) < 3);
        assert_eq!(Mix::parse("long=1").map(|m| m.kind_of(12_345_678)), Ok(1));
        assert_eq!(Mix::parse("short=0"), Err(MixError::AllZero));
        assert_eq!(Mix::parse("tiny=1"), Err(MixError::Kind("tiny".into())));
        assert_eq!(
            Mix::parse("short"),
            Err(MixError::NotNameWeight("short".into()))
        );
        assert_eq!(Mix::parse("short=x"), Err(MixError::Weight("x".into())));
    }
}
