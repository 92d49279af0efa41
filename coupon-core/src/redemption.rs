//! Redemptions: the stored row of one use and the receipt returned to the caller.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// One permanent use of a code, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redemption {
    /// The code used.
    pub code: String,
    /// Who used it.
    pub user_id: String,
    /// The caller's order id: a second redeem with it is a replay.
    pub order_id: Option<String>,
    /// Free JSON given by the caller.
    pub context: Option<serde_json::Value>,
    /// When.
    pub redeemed_at: Timestamp,
    /// The code's redemption count after this use.
    pub redemptions: u32,
    /// Uses left after this one.
    pub remaining: u32,
}

/// What a redeem returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Receipt {
    /// The code used.
    pub code: String,
    /// Who used it.
    pub user_id: String,
    /// The caller's order id.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub order_id: Option<String>,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub redeemed_at: Timestamp,
    /// The code's redemption count after this use.
    pub redemptions: u32,
    /// Uses left.
    pub remaining: u32,
    /// Whether this is the answer to a repeated request (nothing was counted).
    pub replayed: bool,
}

impl Receipt {
    /// The receipt of `redemption`.
    pub fn new(redemption: &Redemption, replayed: bool) -> Self {
        Receipt {
            code: redemption.code.clone(),
            user_id: redemption.user_id.clone(),
            order_id: redemption.order_id.clone(),
            redeemed_at: redemption.redeemed_at,
            redemptions: redemption.redemptions,
            remaining: redemption.remaining,
            replayed,
        }
    }
}

impl From<Redemption> for Receipt {
    /// The receipt of a redemption just made (not a replay), taking its strings.
    fn from(redemption: Redemption) -> Self {
        Receipt {
            code: redemption.code,
            user_id: redemption.user_id,
            order_id: redemption.order_id,
            redeemed_at: redemption.redeemed_at,
            redemptions: redemption.redemptions,
            remaining: redemption.remaining,
            replayed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_taken_from_a_redemption_is_its_receipt() {
        let redemption = Redemption {
            code: "A-1".into(),
            user_id: "u".into(),
            order_id: Some("o-1".into()),
            context: Some(serde_json::json!({"cart": 3})),
            redeemed_at: chrono::DateTime::from_timestamp_micros(1_000_000).unwrap_or_default(),
            redemptions: 2,
            remaining: 1,
        };
        assert_eq!(
            Receipt::from(redemption.clone()),
            Receipt::new(&redemption, false)
        );
    }
}
