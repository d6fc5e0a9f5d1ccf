package speaker

// The speaker's RBAC, generated into manifests/rbac/speaker by
// `make manifests` from these markers (and any others under
// internal/speaker). Rules with a namespace go into a Role in
// herald-system, the others into the ClusterRole. The speaker reads
// Services but never writes them; its only writes are its own status
// objects and events.

// What decides announcements: Services, their endpoints, Nodes.
// +kubebuilder:rbac:groups="",resources=services;nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// The configuration in herald-system.
// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=ipaddresspools;l2advertisements;bgpadvertisements;bgppeers;communities;bfdprofiles,verbs=get;list;watch
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=configmaps,resourceNames=herald-config,verbs=get;list;watch

// The speakers' status objects (each speaker writes its own node's).
// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=servicel2statuses;servicebgpstatuses;bgpsessionstatuses,verbs=get;list;watch;create;patch;delete;deletecollection
// +kubebuilder:rbac:groups=herald.dev,namespace=herald-system,resources=servicel2statuses/status;servicebgpstatuses/status;bgpsessionstatuses/status,verbs=patch

// Secrets in herald-system: the memberlist key and the BGPPeers'
// passwordSecrets, whose names are the users' choice.
// +kubebuilder:rbac:groups="",namespace=herald-system,resources=secrets,verbs=get;list;watch
