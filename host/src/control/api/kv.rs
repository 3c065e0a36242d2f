//! `/apps/APP/kv…`: an app's key-value buckets (`wpaas kv:*`).

use axum::extract::State;
use wpaas_api::kv::{CreateBucket, Deleted, SetValue};

use super::extract::{Body, Segments};
use super::{created, ok, ApiResult, Shared};

/// `GET /apps/APP/kv`: buckets, totals and quotas.
pub async fn info(State(platform): Shared, Segments(app): Segments<String>) -> ApiResult {
    ok(&platform.kv_info(&app).await?)
}

/// `POST /apps/APP/kv` (201): attach a bucket.
pub async fn create(
    State(platform): Shared,
    Segments(app): Segments<String>,
    Body(body): Body<CreateBucket>,
) -> ApiResult {
    created(&platform.create_bucket(&app, &body.bucket).await?)
}

/// `DELETE /apps/APP/kv/BUCKET`: the bucket and its data.
pub async fn destroy(
    State(platform): Shared,
    Segments((app, bucket)): Segments<(String, String)>,
) -> ApiResult {
    platform.delete_bucket(&app, &bucket).await?;
    ok(&Deleted { deleted: bucket })
}

/// `GET /apps/APP/kv/BUCKET/keys/KEY`.
pub async fn get(
    State(platform): Shared,
    Segments((app, bucket, key)): Segments<(String, String, String)>,
) -> ApiResult {
    ok(&platform.kv_get(&app, &bucket, &key).await?)
}

/// `PUT /apps/APP/kv/BUCKET/keys/KEY`.
pub async fn set(
    State(platform): Shared,
    Segments((app, bucket, key)): Segments<(String, String, String)>,
    Body(body): Body<SetValue>,
) -> ApiResult {
    ok(&platform.kv_set(&app, &bucket, &key, body.value).await?)
}

/// `DELETE /apps/APP/kv/BUCKET/keys/KEY`.
pub async fn delete(
    State(platform): Shared,
    Segments((app, bucket, key)): Segments<(String, String, String)>,
) -> ApiResult {
    platform.kv_delete(&app, &bucket, &key).await?;
    ok(&Deleted { deleted: key })
}
