//! Handles the routes share: passed in, never global.

use std::sync::Arc;

use object_store::ObjectStore;
use orfeas_shared::Config;
use orfeas_shared::db::Db;
use orfeas_shared::queue::Publisher;
use redis::aio::ConnectionManager;

#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub publisher: Arc<Publisher>,
    pub store: Arc<dyn ObjectStore>,
    pub redis: Option<ConnectionManager>,
}
