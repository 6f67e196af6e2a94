//! Planner support that evaluates a call once per execution instead of once per row.
//!
//! A policy written `USING (auth.uid() = user_id)` calls `auth.uid()` for every row the scan
//! reads: Postgres does not cache STABLE functions. Supabase's advice is to write
//! `(select auth.uid())` instead, which the planner turns into an initplan evaluated once per
//! execution. Most policies in the wild do not, so we do it for them: the function's planner
//! support (`prosupport`) answers `SupportRequestSimplify` by wrapping the call in exactly that
//! scalar sub-select, and the planner then makes the initplan as if the user had written it.
//!
//! Why that is safe:
//! - STABLE already promises one result within a statement; an initplan is evaluated at the start
//!   of every execution (a prepared statement's generic plan included), so no result is carried
//!   from one execution, transaction or identity to the next. Nothing is cached here.
//! - `eval_const_expressions` runs before sub-links are turned into sub-plans in the planner's
//!   `preprocess_expression` (for targets, quals, RLS quals, WITH CHECK options alike), so a
//!   sub-link made here is planned like one the user wrote. We set the query's `hasSubLinks` so
//!   that step runs even when the query had none.
//! - Outside the planner (`root` NULL: COPY defaults, index expressions, constraint checks) and in
//!   a query level that reads no relation (the sub-select itself, `SELECT auth.uid()`: its range
//!   table holds only the RTE_RESULT the planner adds for an empty FROM), the call is
//!   already evaluated once, and it is left alone.
use pgrx::pg_sys;

/// The expression that should replace `request.fcall` (a scalar sub-select of the same call),
/// or null to keep the call as it is.
///
/// # Safety
/// `request` must point to the `SupportRequestSimplify` Postgres passed to a support function,
/// called in a memory context that lives as long as the plan being built (the planner's).
pub unsafe fn once_per_execution(request: *mut pg_sys::SupportRequestSimplify) -> *mut pg_sys::Node {
    // SAFETY: the caller guarantees `request` is the planner's live request; `root` and its
    // `parse` are the planner's own structures for the query level being simplified.
    unsafe {
        let root = (*request).root;
        if root.is_null() || (*root).parse.is_null() || (*request).fcall.is_null() {
            return std::ptr::null_mut();
        }
        let parse = (*root).parse;
        if (*parse).commandType == pg_sys::CmdType::CMD_UTILITY || !reads_relations((*parse).rtable) {
            return std::ptr::null_mut();
        }
        let call = pg_sys::copyObjectImpl((*request).fcall.cast()).cast::<pg_sys::Expr>();
        let target = pg_sys::makeTargetEntry(call, 1, std::ptr::null_mut(), false);

        let select = pg_sys::palloc0(std::mem::size_of::<pg_sys::Query>()).cast::<pg_sys::Query>();
        (*select).type_ = pg_sys::NodeTag::T_Query;
        (*select).commandType = pg_sys::CmdType::CMD_SELECT;
        (*select).querySource = pg_sys::QuerySource::QSRC_ORIGINAL;
        (*select).canSetTag = true;
        (*select).jointree = pg_sys::makeFromExpr(std::ptr::null_mut(), std::ptr::null_mut());
        (*select).targetList = list_of_one(target.cast());

        let sublink = pg_sys::palloc0(std::mem::size_of::<pg_sys::SubLink>()).cast::<pg_sys::SubLink>();
        (*sublink).xpr.type_ = pg_sys::NodeTag::T_SubLink;
        (*sublink).subLinkType = pg_sys::SubLinkType::EXPR_SUBLINK;
        (*sublink).subselect = select.cast();
        (*sublink).location = -1;

        // preprocess_expression turns sub-links into sub-plans only when the query says it has some.
        (*parse).hasSubLinks = true;
        sublink.cast()
    }
}

/// Whether a range table has anything but the RTE_RESULT the planner puts in an empty FROM (so
/// `SELECT auth.uid()`, and the sub-select made here, are left alone).
///
/// # Safety
/// `rtable` must be a Query's range table (a List of RangeTblEntry, or NIL).
unsafe fn reads_relations(rtable: *mut pg_sys::List) -> bool {
    // SAFETY: per the caller, every element is a RangeTblEntry.
    let entries = unsafe { pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg(rtable) };
    // SAFETY: the pointers come from the planner's live range table.
    let reads = entries.iter_ptr().any(|rte| unsafe { (*rte).rtekind != pg_sys::RTEKind::RTE_RESULT });
    reads
}

/// A one-element `List` of a pointer (Postgres's `list_make1`, a macro pgrx does not bind).
///
/// # Safety
/// Must be called inside a Postgres memory context (the list is palloc'd there).
unsafe fn list_of_one(item: *mut std::ffi::c_void) -> *mut pg_sys::List {
    // SAFETY: lappend with NIL allocates a new list in CurrentMemoryContext.
    unsafe { pg_sys::lappend(std::ptr::null_mut(), item) }
}
