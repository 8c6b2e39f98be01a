// Package role is the one tenant role model of both services: the four roles
// of an organisation membership and their order (viewer < member < admin <
// owner). Every "at least admin" check in either service goes through it.
package role

// Role is a tenant membership role.
type Role string

// The roles, lowest to highest.
const (
	Viewer Role = "viewer"
	Member Role = "member"
	Admin  Role = "admin"
	Owner  Role = "owner"
)

// All lists the roles from lowest to highest.
var All = [...]Role{Viewer, Member, Admin, Owner}

// rank orders the roles; 0 is "not a role".
func (r Role) rank() int {
	switch r {
	case Viewer:
		return 1
	case Member:
		return 2
	case Admin:
		return 3
	case Owner:
		return 4
	}
	return 0
}

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r is a valid role ranked min or higher. An unknown
// role is never at least anything, and nothing is at least an unknown role.
func (r Role) AtLeast(min Role) bool { return r.Valid() && min.Valid() && r.rank() >= min.rank() }

// Outranks reports whether r ranks strictly above other.
func (r Role) Outranks(other Role) bool { return r.Valid() && r.rank() > other.rank() }

// AtLeast is Role(role).AtLeast(Role(min)) for callers holding strings.
func AtLeast(role, min string) bool { return Role(role).AtLeast(Role(min)) }
