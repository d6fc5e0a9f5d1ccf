// Package k8s holds Herald's Kubernetes plumbing shared by the controller
// and the speaker: the scheme, reading the configuration objects into
// config.Resources, and small status/patch helpers. It decides nothing.
package k8s
