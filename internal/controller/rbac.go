package controller

// The controller's RBAC, generated into manifests/rbac/controller by
// `make manifests` from these markers and those of its packages
// (allocation: Services and configuration; certs: the webhook's Secret and
// configuration). Rules with a namespace go into a Role in herald-system,
// the others into the ClusterRole.

// Leader election: one Lease in herald-system.
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=herald-system,resources=leases,verbs=get;create;update

// The speakers' memberlist Secret, created when missing and otherwise only
// looked at; the controller reads no other Secret but its webhook's.
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=secrets,verbs=create
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=secrets,resourceNames=herald-memberlist,verbs=get

// Events on Services, configuration objects and the Lease.
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
