//! Re-split on failover: a multipart message moved to an SMSC that splits differently (UDH
//! 8/16, SAR, payload) is rendered again from its stored text for that SMSC.
//!
//! Owns deciding that a part needs it and doing it after the route task's batch (the parts are
//! back in the queue by then, so the store sees none in flight). Must never re-split a message
//! with a part already acknowledged or whose text was dropped: such a message goes as rendered
//! (the store refuses, and the refusal is remembered in [`parts`](super::parts)).

use super::Dispatch;
use super::link::SmscLink;
use crate::store::{MessageId, QueuedPart};

impl Dispatch {
    /// Whether `part` must be re-split before it can go through `link`: a multipart message
    /// rendered for another split method (UDH 8/16, SAR, payload) than the one this SMSC takes.
    /// Parts of a message whose re-split was refused go as they are.
    pub(super) fn needs_resplit(&self, link: &SmscLink, part: &QueuedPart) -> bool {
        let cfg = self.config.borrow().clone();
        let Some(smsc) = cfg.smsc(&link.name) else {
            return false;
        };
        let differs = part.split != smsc.split.name()
            && (part.total > 1 || smsc.split == crate::text::SplitMethod::Payload);
        differs && !self.side.resplit_refused(&part.part.message)
    }

    /// Re-splits the messages set aside by `send` for the SMSC they now go to, from their
    /// stored text. A message that cannot be re-split (a part already acknowledged, text
    /// dropped, too long for that SMSC) is sent as it is rendered.
    pub(super) async fn resplit_waiting(&self) {
        let waiting = self.side.take_resplits();
        for (id, smsc_name) in waiting {
            let outcome = self.resplit_one(id, &smsc_name).await;
            match outcome {
                Ok(parts) => {
                    tracing::info!(message = %id, smsc = %smsc_name, parts, "re-split for the failover SMSC")
                }
                Err(why) => {
                    tracing::info!(message = %id, smsc = %smsc_name, reason = %why, "not re-split; sending as rendered");
                    self.side.refuse_resplit(id);
                }
            }
        }
    }

    async fn resplit_one(&self, id: MessageId, smsc_name: &str) -> Result<usize, String> {
        let cfg = self.config.borrow().clone();
        let smsc = cfg.smsc(smsc_name).ok_or("the SMSC is gone")?;
        let view = self
            .store
            .backend()
            .message(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the message is gone")?;
        let text = view.text.ok_or("its text was dropped")?;
        let opts: serde_json::Value = serde_json::from_str(&view.options).unwrap_or_default();
        let mut languages = crate::text::LanguageSet::EMPTY;
        for l in &smsc.shift_tables {
            languages.insert(*l);
        }
        let encoding = opts["encoding"]
            .as_str()
            .and_then(|e| e.parse().ok())
            .unwrap_or_default();
        let options = crate::text::EncodeOptions {
            languages,
            encoding,
            smart: opts["smart"].as_bool().unwrap_or(false),
            split: smsc.split,
            max_parts: smsc.max_parts,
            packed: smsc.gsm_packed,
        };
        // A fresh reference: the message id's low bits rotate with every message.
        let reference = (id.0 & 0xFFFF) as u16;
        let encoded = crate::text::encode(&text, &options, reference).map_err(|e| e.to_string())?;
        let plan = *encoded.plan();
        let esm_class = if plan.udhi { 0x40 } else { 0 };
        let parts: Vec<crate::store::NewPart> = encoded
            .segments()
            .map(|seg| crate::store::NewPart {
                data_coding: plan.data_coding,
                esm_class,
                segment: seg.short_message().to_vec(),
                sar_ref: seg.sar.map(|x| x.msg_ref_num),
            })
            .collect();
        let n = parts.len();
        self.store
            .backend()
            .resplit(id, smsc.split.name().to_owned(), parts)
            .await
            .map_err(|e| e.to_string())?;
        Ok(n)
    }
}
