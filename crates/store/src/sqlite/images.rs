//! Tenants' built images and their layers. An image's row names its
//! layers (a JSON array of keys); a layer's row points at the layer
//! snapshot holding what its step changed. Replacing an image and
//! counting the tenant's images are one write transaction.

use super::{reservations, to_u64, BEGIN_WRITE};
use crate::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

const IMAGE_COLUMNS: &str =
    "tenant_id, name, base, steps, layers, content_sha256, packages, built_at";
const LAYER_COLUMNS: &str =
    "tenant_id, key, parent, base, snapshot_id, content_sha256, packages, created_at";

fn json<T: serde::de::DeserializeOwned>(row: &SqliteRow, column: &str) -> Result<T> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("image {column}: {e}")))
}

fn text<T: serde::Serialize>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("{what}: {e}")))
}

fn image_from_row(row: &SqliteRow) -> Result<ImageRecord> {
    Ok(ImageRecord {
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        name: row.try_get("name")?,
        base: row.try_get("base")?,
        steps: json(row, "steps")?,
        layers: json(row, "layers")?,
        content_sha256: row.try_get("content_sha256")?,
        packages: json(row, "packages")?,
        built_at: row.try_get("built_at")?,
    })
}

fn layer_from_row(row: &SqliteRow) -> Result<LayerRecord> {
    Ok(LayerRecord {
        tenant_id: TenantId::from_stored(row.try_get("tenant_id")?),
        key: row.try_get("key")?,
        parent: row.try_get("parent")?,
        base: row.try_get("base")?,
        snapshot_id: SnapshotId::from_stored(row.try_get("snapshot_id")?),
        content_sha256: row.try_get("content_sha256")?,
        packages: json(row, "packages")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) async fn put(pool: &SqlitePool, i: &ImageRecord) -> Result<()> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM images WHERE tenant_id = ? AND name = ?)")
            .bind(i.tenant_id.as_str())
            .bind(&i.name)
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        let quotas = reservations::quotas_of(&mut *tx, &i.tenant_id).await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM images WHERE tenant_id = ?")
            .bind(i.tenant_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if to_u64(count, "image count")? >= u64::from(quotas.max_images) {
            return Err(StoreError::CountQuota(format!(
                "max_images: the tenant keeps {count} images, its limit is {}",
                quotas.max_images
            )));
        }
    }
    sqlx::query(
        "INSERT INTO images (tenant_id, name, base, steps, layers, content_sha256, packages,
                             built_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, name) DO UPDATE SET
           base = excluded.base, steps = excluded.steps, layers = excluded.layers,
           content_sha256 = excluded.content_sha256, packages = excluded.packages,
           built_at = excluded.built_at",
    )
    .bind(i.tenant_id.as_str())
    .bind(&i.name)
    .bind(&i.base)
    .bind(text(&i.steps, "image steps")?)
    .bind(text(&i.layers, "image layers")?)
    .bind(&i.content_sha256)
    .bind(text(&i.packages, "image packages")?)
    .bind(i.built_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn get(
    pool: &SqlitePool,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<ImageRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE tenant_id = ? AND name = ?"
    ))
    .bind(tenant.as_str())
    .bind(name)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(image_from_row).transpose()
}

pub(super) async fn list(pool: &SqlitePool, tenant: &TenantId) -> Result<Vec<ImageRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE tenant_id = ? ORDER BY name"
    ))
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(image_from_row).collect()
}

pub(super) async fn delete(pool: &SqlitePool, tenant: &TenantId, name: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM images WHERE tenant_id = ? AND name = ?")
        .bind(tenant.as_str())
        .bind(name)
        .execute(pool)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn put_layer(pool: &SqlitePool, l: &LayerRecord) -> Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO image_layers (tenant_id, key, parent, base, snapshot_id,
                                              content_sha256, packages, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(l.tenant_id.as_str())
    .bind(&l.key)
    .bind(&l.parent)
    .bind(&l.base)
    .bind(l.snapshot_id.as_str())
    .bind(&l.content_sha256)
    .bind(text(&l.packages, "layer packages")?)
    .bind(l.created_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn get_layer(
    pool: &SqlitePool,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<LayerRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {LAYER_COLUMNS} FROM image_layers WHERE tenant_id = ? AND key = ?"
    ))
    .bind(tenant.as_str())
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(layer_from_row).transpose()
}

pub(super) async fn unused_layers(
    pool: &SqlitePool,
    tenant: &TenantId,
) -> Result<Vec<LayerRecord>> {
    let rows = sqlx::query(&format!(
        "SELECT {LAYER_COLUMNS} FROM image_layers l
         WHERE tenant_id = ?1 AND NOT EXISTS (
           SELECT 1 FROM images i, json_each(i.layers) k
           WHERE i.tenant_id = ?1 AND k.value = l.key)
         ORDER BY created_at DESC"
    ))
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter().map(layer_from_row).collect()
}

pub(super) async fn delete_layer(pool: &SqlitePool, tenant: &TenantId, key: &str) -> Result<bool> {
    let r = sqlx::query("DELETE FROM image_layers WHERE tenant_id = ? AND key = ?")
        .bind(tenant.as_str())
        .bind(key)
        .execute(pool)
        .await?;
    Ok(r.rows_affected() > 0)
}
