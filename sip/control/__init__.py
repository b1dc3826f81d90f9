"""The ``trunkline sip`` process around the worker pool: the calls domain's controller on the
workers' events, the consumer of the process's command queue, the ring timer. It calls the
gateway.calls rules (as sms.worker calls gateway.sms); the control plane never imports it."""
