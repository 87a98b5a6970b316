//! Reading the activity log.

use super::{AppState, Page, PageRequest};
use crate::{
    auth::Caller,
    domain::{
        Error,
        activity::{ActivityEntry, ActivityFilter},
        pagination::{Cursor, filter_digest},
        permission::Permission,
    },
    store::activity,
};

pub async fn list(
    state: &AppState,
    caller: &Caller,
    filter: ActivityFilter,
    page: PageRequest,
) -> Result<Page<ActivityEntry>, Error> {
    caller.require(Permission::ActivityRead)?;
    let filters = filter_digest(&format!("activity|{filter:?}"));
    let key = state.page_key().await?;
    let after = page.cursor(key, filters)?;
    let client = state.connection().await?;
    let items = activity::list(&client, caller.workspace_id, &filter, after, page.size + 1).await?;
    // The log is unbounded: it reports no total.
    Ok(page.page(items, 0, key, filters, |e| Cursor {
        time: e.occurred_at,
        id: e.id,
    }))
}
