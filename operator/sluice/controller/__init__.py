"""The operator's Kubernetes side: pure builders of the objects it owns (ConfigMap, CronJob,
run-now Jobs), the schedule rule, the runner settings and the run summary a runner pod reports;
and the handlers that apply them to a cluster."""
