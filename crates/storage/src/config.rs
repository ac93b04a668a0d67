//! Which object store a configuration opens.

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// Where objects live. The default, a `./data` folder, needs no set-up.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "backend", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageConfig {
    /// A local folder, created if missing.
    Filesystem {
        #[serde(default = "default_dir")]
        dir: PathBuf,
    },
    /// Amazon S3 or an S3-compatible server. Unset credentials and region come from the
    /// standard `AWS_*` environment variables.
    S3 {
        bucket: String,
        #[serde(default)]
        endpoint: Option<String>,
        #[serde(default)]
        region: Option<String>,
        #[serde(default)]
        access_key_id: Option<String>,
        #[serde(default)]
        secret_access_key: Option<String>,
        /// Allow plain `http://` endpoints (a server on loopback, in tests).
        #[serde(default)]
        allow_http: bool,
    },
    /// Google Cloud Storage; credentials from `GOOGLE_*` variables unless a file is given.
    Gcs {
        bucket: String,
        #[serde(default)]
        service_account_path: Option<String>,
    },
    /// Azure Blob Storage; credentials from `AZURE_*` variables unless a key is given.
    Azure {
        account: String,
        container: String,
        #[serde(default)]
        access_key: Option<String>,
        /// The account's blob endpoint when it is not `https://<account>.blob.core.windows.net`
        /// (Azurite or Azure Stack: `http://host:10000/<account>`).
        #[serde(default)]
        endpoint: Option<String>,
        /// Allow a plain `http://` endpoint (an emulator on loopback, in tests).
        #[serde(default)]
        allow_http: bool,
    },
}

fn default_dir() -> PathBuf {
    PathBuf::from("./data")
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig::Filesystem { dir: default_dir() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create the storage folder {dir}: {source}")]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {backend} storage configuration: {source}")]
    Config {
        backend: &'static str,
        #[source]
        source: object_store::Error,
    },
}

impl StorageConfig {
    /// Opens the configured store.
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>, StorageError> {
        match self {
            StorageConfig::Filesystem { dir } => {
                std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
                    dir: dir.clone(),
                    source,
                })?;
                let store = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|source| StorageError::Config {
                        backend: "filesystem",
                        source,
                    })?
                    .with_automatic_cleanup(true);
                Ok(Arc::new(store))
            }
            StorageConfig::S3 {
                bucket,
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                allow_http,
            } => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_retry(retry())
                    .with_bucket_name(bucket)
                    .with_allow_http(*allow_http);
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if let Some(region) = region {
                    builder = builder.with_region(region);
                }
                if let Some(key) = access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                let store = builder.build().map_err(|source| StorageError::Config {
                    backend: "s3",
                    source,
                })?;
                Ok(Arc::new(store))
            }
            StorageConfig::Gcs {
                bucket,
                service_account_path,
            } => {
                let mut builder = GoogleCloudStorageBuilder::from_env()
                    .with_retry(retry())
                    .with_bucket_name(bucket);
                if let Some(path) = service_account_path {
                    builder = builder.with_service_account_path(path);
                }
                let store = builder.build().map_err(|source| StorageError::Config {
                    backend: "gcs",
                    source,
                })?;
                Ok(Arc::new(store))
            }
            StorageConfig::Azure {
                account,
                container,
                access_key,
                endpoint,
                allow_http,
            } => {
                let mut builder = MicrosoftAzureBuilder::from_env()
                    .with_retry(retry())
                    .with_account(account)
                    .with_container_name(container)
                    .with_allow_http(*allow_http);
                if let Some(key) = access_key {
                    builder = builder.with_access_key(key);
                }
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                let store = builder.build().map_err(|source| StorageError::Config {
                    backend: "azure",
                    source,
                })?;
                Ok(Arc::new(store))
            }
        }
    }
}

/// How a request to remote object storage is retried: a few times within seconds, so that a
/// store that is down answers a query or a write with an error soon (503) instead of after
/// the client library's three minutes; the segment writer retries whole writes on top.
fn retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(10),
        ..Default::default()
    }
}
