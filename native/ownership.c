/* ownership.c: how a handle passes from one module to another.
 *
 * The rules, as broker/ownership.py states them for people:
 *   own    the handle moves: the giver's number turns STALE, the receiver
 *          owns a new one.  Only an owning handle that is not lent out may
 *          move (a borrowed one: ACCES; a lent one: BUSY).
 *   borrow the receiver gets a borrowed handle (not counted) with the
 *          giver's rights; the giver's handle is busy (no close, no move)
 *          until the borrow ends, when the call returns.
 *   share  the receiver gets its own owning handle: one reference more.
 * A ":r" pass (WM_PASS_READONLY) gives the receiver READ only.  Checking
 * and applying are split so that a call with several handle parameters
 * either passes all of them or none.  The caller holds the broker lock.
 */
#include "wm_core.h"

int wm_pass_check(wm_module *from, uint32_t h, uint32_t how, wm_handle **slot)
{
    int err = wm_handles_lookup(&from->handles, h, slot);
    if (err)
        return err;
    switch (how & WM_PASS_KIND) {
    case WM_PASS_OWN:
        if ((*slot)->state != WM_H_OWN)
            return WM_ACCES; /* a borrowed handle is not the callee's to give away */
        if ((*slot)->busy)
            return WM_BUSY;
        break;
    case WM_PASS_BORROW:
        if ((*slot)->busy == UINT16_MAX)
            return WM_BUSY;
        break;
    default:
        break;
    }
    return WM_OK;
}

uint32_t wm_pass_apply(wm_module *from, uint32_t from_h, wm_handle *slot, uint32_t how,
                       uint8_t mask, wm_module *to)
{
    wm_broker *b = from->broker;
    uint8_t rights = slot->rights & mask;
    if (how & WM_PASS_READONLY)
        rights &= WM_RIGHT_READ;
    uint32_t map = slot->map, out = 0;
    uint8_t state = WM_H_OWN;
    /* The giver's side first: issuing may move `to`'s table, which is the
     * giver's own when a module calls itself, so `slot` is not used after. */
    switch (how & WM_PASS_KIND) {
    case WM_PASS_OWN:
        wm_handles_release(&from->handles, slot);
        break;
    case WM_PASS_SHARE:
        wm_maps_incref(b, map);
        break;
    case WM_PASS_BORROW:
        slot->busy++;
        state = WM_H_BORROW;
        break;
    }
    wm_handles_issue(&to->handles, UINT32_MAX, state, map, rights, &out);
    WM_TRACE(b, .kind = (uint32_t[]){0, WM_EV_MOVE, WM_EV_BORROW, WM_EV_SHARE}[how & WM_PASS_KIND],
             .module = from->id, .handle = from_h,
             .other_module = to->id, .other_handle = out, .map = WM_MAP_ID(b, map));
    (void)b;
    return out;
}

bool wm_borrow_end(wm_module *lender, uint32_t lender_h, wm_module *callee, uint32_t callee_h)
{
    wm_broker *b = lender->broker;
    wm_handle *slot;
    uint32_t map = UINT32_MAX; /* the lent map's row, for the tracer */
    bool left_open = false;
    if (wm_handles_lookup(&lender->handles, lender_h, &slot) == WM_OK) {
        map = slot->map;
        if (slot->busy)
            slot->busy--;
    }
    if (wm_handles_lookup(&callee->handles, callee_h, &slot) == WM_OK &&
        slot->state == WM_H_BORROW) {
        wm_handles_release(&callee->handles, slot);
        left_open = true;
    }
    WM_TRACE(b, .kind = WM_EV_BORROW_END, .module = lender->id, .handle = lender_h,
             .other_module = callee->id, .other_handle = callee_h,
             .map = map == UINT32_MAX ? 0 : WM_MAP_ID(b, map),
             .flags = left_open ? WM_EVF_LEFT_OPEN : 0);
    (void)b;
    (void)map;
    return left_open;
}
