//! Encode + split throughput on the daemon's hot path: a 160-character GSM text (one part; goal
//! < 1 µs), a 400-character mixed UCS-2 text (Cyrillic, Latin, emoji; 7 parts), and for
//! reference a 459-septet GSM text (3 parts) and a national-table choice.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use smppd::text::{self, EncodeOptions, LanguageSet, NationalLanguage};

fn gsm_160() -> String {
    let base = "Your verification code is 482913. It expires in 10 minutes. Do not share it \
                with anyone, our staff will never ask for it. Questions? Call +46 8 123 456 00 ";
    let t: String = base.chars().cycle().take(160).collect();
    assert_eq!(t.chars().count(), 160);
    t
}

fn mixed_400() -> String {
    let base = "Здравствуйте! Ваш заказ №4711 отправлен 😀 Tracking: SE123456789 — \
                доставка завтра 👍🏽 Спасибо за покупку! ";
    let t: String = base.chars().cycle().take(400).collect();
    assert_eq!(t.chars().count(), 400);
    t
}

fn bench(c: &mut Criterion) {
    let opts = EncodeOptions::default();
    let gsm = gsm_160();
    let e = text::encode(&gsm, &opts, 1).unwrap();
    assert_eq!(
        (e.plan().parts, e.plan().encoding.to_string().as_str()),
        (1, "gsm7")
    );
    c.bench_function("encode_split/gsm7_160_chars", |b| {
        b.iter(|| text::encode(black_box(&gsm), black_box(&opts), 7))
    });

    let mixed = mixed_400();
    let e = text::encode(&mixed, &opts, 1).unwrap();
    assert_eq!(e.plan().encoding.to_string(), "ucs2");
    c.bench_function("encode_split/ucs2_mixed_400_chars", |b| {
        b.iter(|| text::encode(black_box(&mixed), black_box(&opts), 7))
    });

    let long: String = gsm.chars().cycle().take(459).collect();
    c.bench_function("encode_split/gsm7_459_chars_3_parts", |b| {
        b.iter(|| text::encode(black_box(&long), black_box(&opts), 7))
    });

    let tr = EncodeOptions {
        languages: LanguageSet::from_iter(NationalLanguage::ALL),
        ..opts
    };
    let turkish: String = "Şişli'de ağaç ığık, İstanbul. "
        .chars()
        .cycle()
        .take(160)
        .collect();
    c.bench_function("encode_split/gsm7_tr_160_chars_national_choice", |b| {
        b.iter(|| text::encode(black_box(&turkish), black_box(&tr), 7))
    });
}

// No plots: criterion's plotters backend panics when the machine has no fonts (a fresh CI box).
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
