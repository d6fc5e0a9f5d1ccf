package allocation

// What the reconcilers read and write; generated into the controller's
// RBAC (see package controller).

// Services: read all, write the pool annotation (metadata) and
// status.loadBalancer. The controller never updates a Service's spec.
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=services/status,verbs=patch

// Namespaces: their labels, for pools' namespaceSelectors.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// The configuration in herald-system, and its Valid conditions and pool
// counts (status).
// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=ipaddresspools;l2advertisements;bgpadvertisements;bgppeers;communities;bfdprofiles,verbs=get;list;watch
// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=ipaddresspools/status;l2advertisements/status;bgpadvertisements/status;bgppeers/status;communities/status;bfdprofiles/status,verbs=get;patch;update
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=configmaps,resourceNames=herald-config,verbs=get;list;watch
