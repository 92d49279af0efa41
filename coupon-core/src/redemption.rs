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
