//! The message mix the load tools send (`smppd bench` and `benches/kannel_load.rs`, so both
//! gateways get the same texts): what operators send most. Data only.

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

#[cfg(test)]
mod tests {
    use super::mix_texts;
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
}
