//! Reading the activity log.

use super::{AppState, Page, PageRequest};
use crate::{
    auth::Caller,
    domain::{
        Error,
        activity::{ActivityEntry, ActivityFilter},
        pagination::Cursor,
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
    let listing = &format!("activity|{filter:?}");
    let (page, client) = page
        .open(state, caller, Permission::ActivityRead, listing)
        .await?;
    let items = activity::list(&client, caller.workspace_id, &filter, page.window()).await?;
    // The log is unbounded: it reports no total.
    Ok(page.page(items, 0, |e| Cursor::new(e.occurred_at, e.id)))
}
