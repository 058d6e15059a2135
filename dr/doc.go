// Package dr is the disaster-recovery control plane: the global metadata
// on embedded etcd (dr/meta) and the controller (dr/controller) that
// fences ordered topics by epoch, fails over, switches over and fails back.
//
// Status: planned; this package holds no code yet.
package dr
