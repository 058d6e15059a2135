// Package k8s holds duomq's Kubernetes manifests for one site (a
// namespace, the site's ConfigMap, StatefulSets of the etcd member,
// nameservers and brokers, Deployments of the proxies, the replicator and
// the controller candidate, their Services and PodDisruptionBudgets) and
// their test. It has no code of its own.
//
// The test needs no cluster: it decodes every manifest strictly into the
// Kubernetes API types and checks the references between them: selectors
// match pod labels, Services and probes name existing container ports,
// ConfigMap keys, volumes and environment variables exist, PDBs select a
// workload.
package k8s
