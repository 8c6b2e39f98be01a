package billing

// A limit of 0 is no maximum (custom plans, overrides).

// CheckMembers refuses (a *LimitError naming max_members, Current = members)
// taking adding more seats when members are taken and p allows fewer than
// members+adding. An invite takes one seat, members counting open invites;
// accepting an invite takes one; a plan switch takes none.
func CheckMembers(p Plan, members, adding int64) error {
	if p.MaxMembers > 0 && members+adding > p.MaxMembers {
		return &LimitError{PlanID: p.ID, Exceeded: []LimitExceeded{{Limit: LimitMembers, Max: p.MaxMembers, Current: members}}}
	}
	return nil
}

// NeedsKeyCount reports whether moving from cur to target needs the tenant's
// API key count: only when target allows fewer keys than cur (keys are the
// gateway's, so an upgrade never waits for it).
func NeedsKeyCount(cur, target Plan) bool {
	return target.MaxAPIKeys > 0 && (cur.MaxAPIKeys == 0 || target.MaxAPIKeys < cur.MaxAPIKeys)
}

// CheckFits refuses a target plan whose limits the tenant's usage exceeds,
// naming every exceeded limit (members first). apiKeys is nil when the key
// count was not needed (see NeedsKeyCount).
func CheckFits(target Plan, members int64, apiKeys *int64) error {
	le := &LimitError{PlanID: target.ID}
	if target.MaxMembers > 0 && members > target.MaxMembers {
		le.Exceeded = append(le.Exceeded, LimitExceeded{Limit: LimitMembers, Max: target.MaxMembers, Current: members})
	}
	if apiKeys != nil && target.MaxAPIKeys > 0 && *apiKeys > target.MaxAPIKeys {
		le.Exceeded = append(le.Exceeded, LimitExceeded{Limit: LimitAPIKeys, Max: target.MaxAPIKeys, Current: *apiKeys})
	}
	if len(le.Exceeded) > 0 {
		return le
	}
	return nil
}

// checkSwitch is the rule of the switch itself, evaluated under the tenant
// lock: cur is the tenant's plan now, from the plan the caller's checks were
// made against, to the target.
func checkSwitch(cur Plan, from string, to Plan) error {
	switch {
	case cur.ID == to.ID:
		return ErrAlreadyOnPlan
	case cur.ID != from:
		return ErrPlanChanged
	}
	return nil
}
