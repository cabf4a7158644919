//! Storage configuration: which object store backend holds chunks and index, and the caches.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::segment::SegmentFormat;

/// The `storage` section of the config file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where chunks and index live: `filesystem`, `s3`, `gcs`, `azure` or `memory` (tests only:
    /// nothing survives a restart).
    pub backend: Backend,
    pub filesystem: FilesystemConfig,
    pub s3: S3Config,
    pub gcs: GcsConfig,
    pub azure: AzureConfig,
    /// Byte budget of the cache of chunks read from the object store.
    pub chunk_cache_size_mb: u64,
    /// How long a querier trusts its list of index files before listing the store again.
    /// Index files written by this process are visible at once.
    #[serde(with = "fjord_model::duration::serde_duration")]
    pub index_refresh_interval: Duration,
    /// How flushes and compactions write chunks: 3, whose segments gather the chunks' tails
    /// so that searches read every tail of a segment at once and then only the blocks that may
    /// match; 2, each tail after its chunk; 1, chunks without tails. Binaries older than each
    /// format read none of it: set the older number during a rolling upgrade until every
    /// process runs a binary that reads the newer (see [`SegmentFormat`]).
    pub chunk_format: u8,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: Backend::Filesystem,
            filesystem: FilesystemConfig::default(),
            s3: S3Config::default(),
            gcs: GcsConfig::default(),
            azure: AzureConfig::default(),
            chunk_cache_size_mb: 256,
            index_refresh_interval: Duration::from_secs(60),
            chunk_format: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Filesystem,
    S3,
    Gcs,
    Azure,
    Memory,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// Directory holding the objects; empty means `<data_dir>/store`.
    pub directory: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    pub bucket: String,
    /// e.g. `http://127.0.0.1:8333` for a local S3-compatible server; empty for AWS.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Allow plain HTTP endpoints.
    pub insecure: bool,
    /// Use path-style URLs (`endpoint/bucket/key`), needed by most S3-compatible servers.
    pub force_path_style: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GcsConfig {
    pub bucket: String,
    /// Path of a service account JSON key; empty uses the environment's credentials.
    pub service_account_path: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AzureConfig {
    pub account_name: String,
    pub account_key: String,
    pub container: String,
}

impl StorageConfig {
    /// The segment format `chunk_format` names.
    pub fn write_format(&self) -> Result<SegmentFormat, StoreError> {
        SegmentFormat::from_setting(self.chunk_format).ok_or_else(|| {
            StoreError::Config(format!(
                "storage.chunk_format must be 1, 2 or 3, not {}",
                self.chunk_format
            ))
        })
    }

    /// The filesystem directory in effect for a data dir.
    pub fn filesystem_dir(&self, data_dir: &Path) -> PathBuf {
        if self.filesystem.directory.is_empty() {
            data_dir.join("store")
        } else {
            PathBuf::from(&self.filesystem.directory)
        }
    }

    /// Opens the configured object store.
    pub fn build(&self, data_dir: &Path) -> Result<Arc<dyn ObjectStore>, StoreError> {
        let cfg = |e: object_store::Error| StoreError::Config(e.to_string());
        Ok(match self.backend {
            Backend::Filesystem => {
                let dir = self.filesystem_dir(data_dir);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                })?;
                Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(cfg)?)
            }
            Backend::Memory => Arc::new(object_store::memory::InMemory::new()),
            Backend::S3 => {
                if self.s3.bucket.is_empty() {
                    return Err(StoreError::Config("storage.s3.bucket is required".into()));
                }
                let mut b = object_store::aws::AmazonS3Builder::new()
                    .with_bucket_name(&self.s3.bucket)
                    .with_allow_http(self.s3.insecure)
                    .with_virtual_hosted_style_request(!self.s3.force_path_style);
                if !self.s3.endpoint.is_empty() {
                    b = b.with_endpoint(&self.s3.endpoint);
                }
                b = b.with_region(if self.s3.region.is_empty() {
                    "us-east-1"
                } else {
                    &self.s3.region
                });
                if !self.s3.access_key_id.is_empty() {
                    b = b
                        .with_access_key_id(&self.s3.access_key_id)
                        .with_secret_access_key(&self.s3.secret_access_key);
                }
                Arc::new(b.build().map_err(cfg)?)
            }
            Backend::Gcs => {
                if self.gcs.bucket.is_empty() {
                    return Err(StoreError::Config("storage.gcs.bucket is required".into()));
                }
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::new()
                    .with_bucket_name(&self.gcs.bucket);
                if !self.gcs.service_account_path.is_empty() {
                    b = b.with_service_account_path(&self.gcs.service_account_path);
                }
                Arc::new(b.build().map_err(cfg)?)
            }
            Backend::Azure => {
                if self.azure.container.is_empty() || self.azure.account_name.is_empty() {
                    return Err(StoreError::Config(
                        "storage.azure.account_name and storage.azure.container are required"
                            .into(),
                    ));
                }
                let mut b = object_store::azure::MicrosoftAzureBuilder::new()
                    .with_account(&self.azure.account_name)
                    .with_container_name(&self.azure.container);
                if !self.azure.account_key.is_empty() {
                    b = b.with_access_key(&self.azure.account_key);
                }
                Arc::new(b.build().map_err(cfg)?)
            }
        })
    }
}
