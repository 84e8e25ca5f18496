//! Webhook deliveries: a JSON summary POSTed when a review job ends, signed
//! with the tenant's secret, retried with backoff until delivered or given
//! up, every attempt visible in the API.
//!
//! Signature header: `X-Warden-Signature: t=<unix seconds>,v1=<hex>` where
//! `hex = HMAC-SHA256(secret, "<t>.<body>")`; receivers recompute it and
//! reject old timestamps (replays).

use crate::netguard;
use crate::state::Shared;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;
use warden_store::jobs::{DeliveryRecord, DeliveryStatus};
use warden_store::{now_ms, DeliveryId, JobStore, ReviewId, TenantId};

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BACKOFF_MS: u64 = 300_000;

pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Queues a delivery (sent by [`delivery_loop`]).
pub async fn enqueue(
    jobs: &dyn JobStore,
    tenant: &TenantId,
    review: &ReviewId,
    url: &str,
    body: String,
) -> warden_store::Result<()> {
    let now = now_ms();
    jobs.insert_delivery(&DeliveryRecord {
        id: DeliveryId::generate(),
        tenant_id: tenant.clone(),
        review_id: review.clone(),
        url: url.to_string(),
        body,
        status: DeliveryStatus::Pending,
        attempts: 0,
        last_status_code: None,
        last_error: None,
        next_attempt_at: now,
        created_at: now,
        delivered_at: None,
    })
    .await
}

/// One POST; the status code, or why there was none.
async fn send(url: &str, body: &str, secret: &str, allow_private: bool) -> Result<u16, String> {
    let target = netguard::resolve(url, allow_private)
        .await
        .map_err(|e| e.to_string())?;
    // Connect to exactly the address that was checked, and follow no
    // redirect (it could point anywhere).
    let client = reqwest::Client::builder()
        .resolve(&target.host, target.addr)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let ts = now_ms() / 1000;
    let resp = client
        .post(target.url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("warden/", env!("CARGO_PKG_VERSION")))
        .header("x-warden-event", "review.finished")
        .header("x-warden-signature", signature(secret, ts, body))
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("{e}"))?;
    Ok(resp.status().as_u16())
}

async fn attempt(st: &Shared, mut d: DeliveryRecord) {
    let cfg = &st.cfg.webhooks;
    let secret = match st.jobs.webhook_secret(&d.tenant_id).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("webhook secret: {e}");
            return;
        }
    };
    let result = send(&d.url, &d.body, &secret, cfg.allow_private).await;
    d.attempts += 1;
    match result {
        Ok(code) if (200..300).contains(&code) => {
            d.status = DeliveryStatus::Delivered;
            d.last_status_code = Some(code);
            d.last_error = None;
            d.delivered_at = Some(now_ms());
        }
        other => {
            match other {
                Ok(code) => {
                    d.last_status_code = Some(code);
                    d.last_error = Some(format!("the receiver answered {code}"));
                }
                Err(e) => {
                    d.last_status_code = None;
                    d.last_error = Some(e);
                }
            }
            if d.attempts >= cfg.max_attempts {
                d.status = DeliveryStatus::Failed;
            } else {
                let backoff = cfg
                    .retry_backoff_ms
                    .saturating_mul(1u64 << (d.attempts - 1).min(20))
                    .min(MAX_BACKOFF_MS);
                d.next_attempt_at = now_ms() + backoff as i64;
            }
        }
    }
    if let Err(e) = st.jobs.update_delivery(&d).await {
        tracing::error!(delivery = %d.id, "recording a webhook attempt: {e}");
    }
}

/// Sends due deliveries until the process ends.
pub async fn delivery_loop(st: Shared) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = match st.jobs.due_deliveries(now_ms(), 16).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!("listing webhook deliveries: {e}");
                continue;
            }
        };
        futures::future::join_all(due.into_iter().map(|d| attempt(&st, d))).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_cover_time_and_body() {
        let a = super::signature("s", 100, "{}");
        assert!(a.starts_with("t=100,v1=") && a.len() == "t=100,v1=".len() + 64);
        assert_ne!(a, super::signature("s", 101, "{}"));
        assert_ne!(a, super::signature("s", 100, "{ }"));
        assert_ne!(a, super::signature("t", 100, "{}"));
    }
}
