//! E2B's volume API (`Volume.create`, `Volume.list`, `Volume.get_info`,
//! `Volume.destroy`) over Warden's volumes (`service::volumes`), and the
//! translation of `volumeMounts` in a create. E2B names a volume by its
//! name in mounts and by its id elsewhere; both are the tenant's own.
//! Volumes made here take the server's default size (1 GiB, or
//! `[limits] max_volume_bytes` if less): E2B's API has no size.

use super::auth::E2bCaller;
use super::error::{E2bJson, E2bResult};
use crate::api_volumes::VolumeMount;
use crate::service;
use crate::state::Shared;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use warden_store::VolumeRecord;

/// `NewVolume`.
#[derive(Deserialize)]
pub struct NewVolume {
    pub name: String,
}

/// `SandboxVolumeMount` in `NewSandbox.volumeMounts`.
#[derive(Deserialize)]
pub struct E2bVolumeMount {
    pub name: String,
    pub path: String,
}

/// `Volume` (listings) and `VolumeAndToken` (create, get): the token is
/// for E2B's volume content API, which Warden does not serve.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct E2bVolume {
    #[serde(rename = "volumeID")]
    volume_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

fn shown(st: &Shared, v: VolumeRecord, with_token: bool) -> E2bVolume {
    E2bVolume {
        token: with_token.then(|| crate::e2b::token::volume_token(&st.signing_key, &v.id)),
        volume_id: v.id.to_string(),
        name: v.name,
    }
}

/// `NewSandbox.volumeMounts` as Warden's mounts (read-write, as in E2B).
pub fn mounts(asked: Option<Vec<E2bVolumeMount>>) -> Vec<VolumeMount> {
    asked
        .unwrap_or_default()
        .into_iter()
        .map(|m| VolumeMount {
            volume: m.name,
            path: m.path,
            read_only: false,
        })
        .collect()
}

/// `POST /volumes`.
pub async fn create(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    E2bJson(req): E2bJson<NewVolume>,
) -> E2bResult<(StatusCode, Json<E2bVolume>)> {
    let v = service::volumes::create(&st, &caller, &req.name, None).await?;
    Ok((StatusCode::CREATED, Json(shown(&st, v, true))))
}

/// `GET /volumes`.
pub async fn list(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
) -> E2bResult<Json<Vec<E2bVolume>>> {
    let items = caller
        .store
        .list_volumes()
        .await
        .map_err(service::Error::from)?;
    Ok(Json(
        items.into_iter().map(|v| shown(&st, v, false)).collect(),
    ))
}

/// `GET /volumes/{volumeID}`.
pub async fn get(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> E2bResult<Json<E2bVolume>> {
    let v = service::volumes::find(&caller.store, &id).await?;
    Ok(Json(shown(&st, v, true)))
}

/// `DELETE /volumes/{volumeID}`.
pub async fn delete(
    E2bCaller(caller): E2bCaller,
    State(st): State<Shared>,
    Path(id): Path<String>,
) -> E2bResult<StatusCode> {
    service::volumes::delete(&st, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
