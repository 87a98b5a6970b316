//! Reading `ListUsers`: its filters and orders as SQL, and the choice of
//! statements for a page and its total (an estimate, a count, a search
//! that reads its matches once, an index walk). Every query is scoped by
//! workspace id.

use time::OffsetDateTime;
use tokio_postgres::{
    Row,
    types::{ToSql, Type},
};
use uuid::Uuid;
use wowchat_platform::statements;

use super::{
    Client,
    users::{COLUMNS, from_row},
};
use crate::domain::{
    Error,
    pagination::OptionalTimeCursor,
    user::{User, UserStatus},
};

/// Filters of `ListUsers`; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub status: Option<UserStatus>,
    pub role: Option<String>,
    pub reporting_to: Option<Uuid>,
    pub query: Option<String>,
    /// Only users active at or after this time.
    pub active_since: Option<OffsetDateTime>,
    /// Only users whose access ends before this time.
    pub access_expires_before: Option<OffsetDateTime>,
}

/// The order of `ListUsers`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserOrder {
    /// Oldest first: `created_at, id`.
    #[default]
    CreateTime,
    /// Most recently active first, never-active users last:
    /// `last_active_at DESC NULLS LAST, id DESC`.
    LastActiveTimeDesc,
}

impl UserOrder {
    /// Its `ORDER BY` clause.
    fn sql(self) -> &'static str {
        match self {
            UserOrder::CreateTime => BY_CREATION,
            UserOrder::LastActiveTimeDesc => BY_LAST_ACTIVITY,
        }
    }

    /// The sort key of `user` in this order, for its page token.
    pub fn cursor(self, user: &User) -> OptionalTimeCursor {
        let time = match self {
            UserOrder::CreateTime => Some(user.created_at),
            UserOrder::LastActiveTimeDesc => user.last_active_at,
        };
        OptionalTimeCursor { time, id: user.id }
    }
}

/// A `ListUsers` statement being built: its text and its parameters, in
/// step. Only the filters given become SQL, so each combination is its own
/// statement whose predicates the indexes can serve.
struct Statement {
    sql: String,
    params: Vec<(Box<dyn ToSql + Sync + Send>, Type)>,
    /// Planned with its values each time, as a statement with a search term
    /// must be (see [`Statement::run`]), rather than prepared once.
    planned_per_call: bool,
    /// For the planner's estimate of the matches only (see [`estimate`]).
    estimating: bool,
}

impl Statement {
    fn new() -> Self {
        Statement {
            sql: String::new(),
            params: Vec::new(),
            planned_per_call: false,
            estimating: false,
        }
    }

    /// A statement over the users `query`'s filters match, and its `WHERE`
    /// conditions.
    fn matching(query: &PageQuery<'_>) -> (Self, String) {
        let mut statement = Statement::new();
        let conditions = statement.conditions(query.workspace_id, query.filter);
        (statement, conditions)
    }

    /// Adds a parameter and returns its placeholder.
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static, ty: Type) -> String {
        self.params.push((Box::new(value), ty));
        format!("${}", self.params.len())
    }

    /// The `WHERE` conditions of `filter` in `workspace_id`.
    fn conditions(&mut self, workspace_id: Uuid, filter: &UserFilter) -> String {
        let mut sql = format!("workspace_id = {}", self.bind(workspace_id, Type::UUID));
        if let Some(status) = filter.status {
            let p = self.bind(status.as_str(), Type::TEXT);
            sql.push_str(&format!(" AND status = {p}"));
        }
        if let Some(role) = &filter.role {
            let p = self.bind(role.clone(), Type::TEXT);
            sql.push_str(&format!(" AND role = {p}"));
        }
        if let Some(manager) = filter.reporting_to {
            let p = self.bind(manager, Type::UUID);
            sql.push_str(&format!(" AND reporting_to = {p}"));
        }
        if let Some(query) = &filter.query {
            self.planned_per_call = true;
            let searched = self.search(query);
            sql.push_str(&format!(" AND {searched}"));
        }
        if let Some(since) = filter.active_since {
            let p = self.bind(since, Type::TIMESTAMPTZ);
            sql.push_str(&format!(" AND last_active_at >= {p}"));
        }
        if let Some(before) = filter.access_expires_before {
            let p = self.bind(before, Type::TIMESTAMPTZ);
            sql.push_str(&format!(" AND access_expires_at < {p}"));
        }
        sql
    }

    /// The condition of the users whose email or name holds `query`.
    fn search(&mut self, query: &str) -> String {
        let term = query.to_lowercase();
        let (pattern, exact) = trigram_pattern(&term);
        let p = self.bind(pattern, Type::TEXT);
        let mut sql = format!("{SEARCHED} LIKE {p}");
        // Not in an estimate: the planner cannot tell how selective it
        // is and guesses a third, where the pattern's estimate is right.
        if !exact && !self.estimating {
            let t = self.bind(term, Type::TEXT);
            sql.push_str(&format!(" AND strpos({SEARCHED}, {t}) > 0"));
        }
        sql
    }

    /// The condition of the rows after `after` in `order`. In last-active
    /// order after a time it is the earlier times only; the never-active
    /// users that follow them are the caller's to add.
    fn after(&mut self, order: UserOrder, after: OptionalTimeCursor) -> String {
        let id = self.bind(after.id, Type::UUID);
        match (order, after.time) {
            (UserOrder::CreateTime, time) => {
                let time = self.bind(time, Type::TIMESTAMPTZ);
                format!("(created_at, id) > ({time}, {id})")
            }
            // After a never-active user come only never-active users with a smaller id.
            (UserOrder::LastActiveTimeDesc, None) => {
                format!("last_active_at IS NULL AND id < {id}")
            }
            (UserOrder::LastActiveTimeDesc, Some(time)) => {
                let time = self.bind(time, Type::TIMESTAMPTZ);
                format!("(last_active_at, id) < ({time}, {id})")
            }
        }
    }

    /// Runs the statement. A search runs unnamed, so Postgres plans it with
    /// its term: a cached generic plan cannot know whether a term is rare
    /// (read its few matches through the trigram index) or common (walk the
    /// order's index until the page is full). Every other listing is
    /// prepared once per connection: its plan does not depend on the values.
    /// One round trip either way. (Through a transaction pooler every
    /// statement is unnamed: see `wowchat_platform::statements`.)
    async fn run(&self, client: &Client) -> Result<Vec<Row>, Error> {
        if self.planned_per_call || statements::unnamed_statements() {
            let params: Vec<(&(dyn ToSql + Sync), Type)> = self
                .params
                .iter()
                .map(|(value, ty)| (&**value as &(dyn ToSql + Sync), ty.clone()))
                .collect();
            return Ok(client.query_typed(&self.sql, &params).await?);
        }
        let types: Vec<Type> = self.params.iter().map(|(_, ty)| ty.clone()).collect();
        let statement = client.prepare_typed_cached(&self.sql, &types).await?;
        let params: Vec<&(dyn ToSql + Sync)> = self
            .params
            .iter()
            .map(|(value, _)| &**value as &(dyn ToSql + Sync))
            .collect();
        Ok(client.query(&statement, &params).await?)
    }
}

/// The LIKE pattern that finds `term` through the trigram index, and
/// whether it matches exactly that. Each character but a letter or digit
/// becomes `_` (any one character): pg_trgm splits words there and pads
/// their ends, and padded trigrams (`"  t"`: every word starting with t)
/// have the longest lists in the index, so a term with `_` reads a fraction
/// of the index its punctuated spelling would. When a character was
/// replaced, the exact match is the caller's to check.
fn trigram_pattern(term: &str) -> (String, bool) {
    let mut pattern = String::with_capacity(term.len() + 2);
    let mut exact = true;
    pattern.push('%');
    for c in term.chars() {
        if c.is_alphanumeric() {
            pattern.push(c);
        } else {
            pattern.push('_');
            exact = false;
        }
    }
    pattern.push('%');
    (pattern, exact)
}

/// What `query` searches: email and display name, as one stored text
/// (`email_normalized || E'\\n' || lower(display_name)`, migration V26) so
/// that one trigram index (`users_search_trigrams`) serves it and a walk
/// past common matches computes nothing per row.
const SEARCHED: &str = "searched";

const BY_CREATION: &str = "ORDER BY created_at, id";
const BY_LAST_ACTIVITY: &str = "ORDER BY last_active_at DESC NULLS LAST, id DESC";

/// One page of users in `order`, after `after`: a range scan of the index of
/// that order (`users_by_creation`, `users_by_role_and_creation`,
/// `users_by_last_activity`), never a count or a sort of every match.
async fn list(client: &Client, query: &PageQuery<'_>) -> Result<Vec<User>, Error> {
    let q = page_statement(query, COLUMNS, query.limit);
    q.run(client).await?.iter().map(from_row).collect()
}

/// The statement of [`list`]: `columns` of at most `limit` users.
fn page_statement(query: &PageQuery<'_>, columns: &str, limit: i64) -> Statement {
    let PageQuery { order, after, .. } = *query;
    let (mut q, conditions) = Statement::matching(query);
    let select = format!("SELECT {columns} FROM users WHERE {conditions}");
    let by = order.sql();
    q.sql = match after {
        None => format!("{select} {by}"),
        // After a time come the earlier times (a row comparison the index
        // ranges over), then every never-active user: two index ranges,
        // merged in order.
        Some(after @ OptionalTimeCursor { time: Some(_), .. })
            if order == UserOrder::LastActiveTimeDesc =>
        {
            let earlier = q.after(order, after);
            let limit = q.bind(limit, Type::INT8);
            format!(
                "({select} AND {earlier} {by} LIMIT {limit}) \
                 UNION ALL ({select} AND last_active_at IS NULL {by} LIMIT {limit}) {by}"
            )
        }
        Some(after) => {
            let after = q.after(order, after);
            format!("{select} AND {after} {by}")
        }
    };
    let limit = q.bind(limit, Type::INT8);
    q.sql.push_str(&format!(" LIMIT {limit}"));
    q
}

/// A search's page from the first `rows` users after `after` in the order's
/// index, those the term matches: a page full by then is the page, at a
/// bounded cost whatever the table's size. Fewer means the term is rarer
/// than that among those users (or they were the last): the caller reads
/// its matches another way.
async fn walk(client: &Client, query: &PageQuery<'_>, rows: i64) -> Result<Vec<User>, Error> {
    let Some(term) = &query.filter.query else {
        return list(client, query).await;
    };
    let every_user = UserFilter {
        query: None,
        ..query.filter.clone()
    };
    let walked = PageQuery {
        filter: &every_user,
        ..*query
    };
    let mut q = page_statement(&walked, &format!("{COLUMNS}, {SEARCHED}"), rows);
    let searched = q.search(term);
    let limit = q.bind(query.limit, Type::INT8);
    q.sql = format!(
        "SELECT {COLUMNS} FROM ({}) AS walked WHERE {searched} {} LIMIT {limit}",
        q.sql,
        query.order.sql()
    );
    q.run(client).await?.iter().map(from_row).collect()
}

/// One page of users in `order`, after `after`, and how many match in all,
/// from one read of the matches: for a filter few users match, where
/// reading them (a search's trigram scan) is the cost and the page is a
/// sort of them. Reads at most `count_up_to + 1` matches: a count above
/// `count_up_to` means more match, and the page is then not theirs to give
/// (it is empty; list with [`list`] instead).
async fn list_and_count(client: &Client, query: &PageQuery<'_>) -> Result<(Vec<User>, i64), Error> {
    let PageQuery {
        order,
        after,
        limit,
        exact_count_up_to: count_up_to,
        ..
    } = *query;
    let (mut q, conditions) = Statement::matching(query);
    let read_up_to = q.bind(count_up_to.saturating_add(1), Type::INT8);
    let after = match after {
        None => "true".to_owned(),
        // The earlier times, then every never-active user.
        Some(after @ OptionalTimeCursor { time: Some(_), .. })
            if order == UserOrder::LastActiveTimeDesc =>
        {
            format!("({} OR last_active_at IS NULL)", q.after(order, after))
        }
        Some(after) => q.after(order, after),
    };
    let by = order.sql();
    let limit = q.bind(limit, Type::INT8);
    // The count's row comes back even when the page after `after` is empty:
    // the page's columns are NULL then.
    q.sql = format!(
        "WITH matching AS MATERIALIZED \
           (SELECT {COLUMNS} FROM users WHERE {conditions} LIMIT {read_up_to}), \
         page AS (SELECT * FROM matching WHERE {after} {by} LIMIT {limit}) \
         SELECT (SELECT count(*) FROM matching) AS matched, page.* \
         FROM (SELECT 1) AS one LEFT JOIN page ON true {by}"
    );
    let rows = q.run(client).await?;
    let matched = match rows.first() {
        Some(row) => row.try_get("matched")?,
        None => 0,
    };
    if matched > count_up_to {
        return Ok((Vec::new(), matched));
    }
    let mut users = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<_, Option<Uuid>>("id")?.is_some() {
            users.push(from_row(row)?);
        }
    }
    Ok((users, matched))
}

/// How many users a search's bounded walk passes over for each row of its
/// page: a term that matches fewer than one user in this many is read
/// through the trigram index instead.
const WALKED_PER_PAGE_ROW: i64 = 40;

/// How many users match a listing's filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalSize {
    Exact(i64),
    /// More than the exact-count limit match (as far as Postgres's
    /// statistics tell): the planner's estimate, never at or below the limit.
    Estimate(i64),
}

/// How many users match `filter` as the planner expects (see [`count`]):
/// it costs a plan, no rows.
async fn estimate(client: &Client, workspace_id: Uuid, filter: &UserFilter) -> Result<i64, Error> {
    let mut q = Statement::new();
    q.estimating = true;
    let conditions = q.conditions(workspace_id, filter);
    // Whatever the filters: a generic plan's estimate ignores their values.
    q.planned_per_call = true;
    q.sql = format!("EXPLAIN (FORMAT JSON) SELECT 1 FROM users WHERE {conditions}");
    let rows = q.run(client).await?;
    let plan: serde_json::Value = rows
        .first()
        .ok_or_else(|| anyhow::anyhow!("EXPLAIN returned no plan"))?
        .try_get(0)?;
    let estimate = plan[0]["Plan"]["Plan Rows"]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("no row estimate in the plan"))?;
    Ok(estimate.round() as i64)
}

/// How many users match `filter`, given the planner's `estimate` of it:
/// counted exactly only when that is at most `exact_up_to`, as a count
/// reads every match; above, the estimate stands in. The count reads at
/// most `exact_up_to + 1` rows however wrong the estimate.
async fn count(
    client: &Client,
    workspace_id: Uuid,
    filter: &UserFilter,
    estimate: i64,
    exact_up_to: i64,
) -> Result<TotalSize, Error> {
    if estimate > exact_up_to {
        return Ok(TotalSize::Estimate(estimate));
    }
    let mut q = Statement::new();
    let conditions = q.conditions(workspace_id, filter);
    let limit = q.bind(exact_up_to.saturating_add(1), Type::INT8);
    q.sql = format!(
        "SELECT count(*) FROM (SELECT 1 FROM users WHERE {conditions} LIMIT {limit}) AS matching"
    );
    let counted: i64 = q
        .run(client)
        .await?
        .first()
        .ok_or_else(|| anyhow::anyhow!("count returned no row"))?
        .try_get(0)?;
    Ok(if counted <= exact_up_to {
        TotalSize::Exact(counted)
    } else {
        // The statistics were wrong: more match than the limit.
        TotalSize::Estimate(counted.max(estimate))
    })
}

/// One `ListUsers` page to read: `limit` is the page size + 1, the extra
/// row telling whether a next page exists; above `exact_count_up_to`
/// matches the total is an estimate.
#[derive(Clone, Copy)]
pub struct PageQuery<'a> {
    pub workspace_id: Uuid,
    pub filter: &'a UserFilter,
    pub order: UserOrder,
    pub after: Option<OptionalTimeCursor>,
    pub limit: i64,
    pub exact_count_up_to: i64,
}

/// A page of users and how many match in all, read the cheapest way the
/// query allows (see [`Planner`]).
pub async fn page_and_total(
    client: &Client,
    query: &PageQuery<'_>,
) -> Result<(Vec<User>, TotalSize), Error> {
    let planner = Planner { client, query };
    if query.filter.query.is_some() {
        planner.search().await
    } else {
        planner.filtered().await
    }
}

/// How one page is read: which statements, in which order.
struct Planner<'a> {
    client: &'a Client,
    query: &'a PageQuery<'a>,
}

impl Planner<'_> {
    /// By filters that index ranges serve: the planner's estimate of the
    /// matches goes out with the page (one round trip), and only a small
    /// count, when needed, takes another.
    async fn filtered(&self) -> Result<(Vec<User>, TotalSize), Error> {
        let (items, estimate) = tokio::join!(
            self.page(),
            estimate(self.client, self.query.workspace_id, self.query.filter)
        );
        let items = items?;
        let total = match self.counted_by(&items) {
            Some(counted) => counted,
            None => {
                count(
                    self.client,
                    self.query.workspace_id,
                    self.query.filter,
                    estimate?,
                    self.query.exact_count_up_to,
                )
                .await?
            }
        };
        Ok((items, total))
    }

    /// A search: reading its matches (a trigram scan) is the cost, so a rare
    /// term's matches are read once for both its page and its count. The
    /// planner's estimate decides first whether the term may be common; a
    /// common term's page comes from a bounded walk of the order's index,
    /// and its total is the estimate. A term the walk finds too rare is
    /// read as a rare one.
    async fn search(&self) -> Result<(Vec<User>, TotalSize), Error> {
        let mut estimate =
            estimate(self.client, self.query.workspace_id, self.query.filter).await?;
        if estimate > self.query.exact_count_up_to {
            // Common, as far as the statistics tell. But they are a sample,
            // and a rare term's estimate can be off a hundredfold; walking
            // the order's index for a rare term would pass over most of the
            // table. So the walk is bounded: a page full within it is the
            // page, and the total is the estimate.
            let rows = self.query.limit.saturating_mul(WALKED_PER_PAGE_ROW);
            let items = walk(self.client, self.query, rows).await?;
            if i64::try_from(items.len()).unwrap_or(i64::MAX) == self.query.limit {
                return Ok((items, TotalSize::Estimate(estimate)));
            }
        }
        // Rare (or rarer than the statistics said): its matches, read once
        // through the trigram index for both its page and its count.
        let (items, matched) = list_and_count(self.client, self.query).await?;
        if matched <= self.query.exact_count_up_to {
            return Ok((items, TotalSize::Exact(matched)));
        }
        // More match than the limit: the planner's page, and an estimate.
        estimate = estimate.max(matched);
        let items = self.page().await?;
        let total = self
            .counted_by(&items)
            .unwrap_or(TotalSize::Estimate(estimate));
        Ok((items, total))
    }

    async fn page(&self) -> Result<Vec<User>, Error> {
        list(self.client, self.query).await
    }

    /// A first page that holds every match (fewer than the `limit` asked
    /// for) has counted them already.
    fn counted_by(&self, items: &[User]) -> Option<TotalSize> {
        let count = i64::try_from(items.len()).unwrap_or(i64::MAX);
        (self.query.after.is_none() && count < self.query.limit).then_some(TotalSize::Exact(count))
    }
}

#[cfg(test)]
mod tests {
    use super::trigram_pattern;

    #[test]
    fn a_term_of_letters_and_digits_is_its_own_exact_pattern() {
        assert_eq!(trigram_pattern("zoë42"), ("%zoë42%".to_owned(), true));
    }

    #[test]
    fn every_other_character_is_any_one_character_and_the_pattern_inexact() {
        assert_eq!(
            trigram_pattern("linus.torv"),
            ("%linus_torv%".to_owned(), false)
        );
        // LIKE's own wildcards and escape are no longer special.
        assert_eq!(trigram_pattern("1%_\\ b"), ("%1____b%".to_owned(), false));
    }
}
