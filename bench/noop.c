/* The process-start baseline for bench/hook_latency: a static program that does nothing.
 * Whatever `ferry emit` or the floor client cost beyond this is their own work. */
int main(void) { return 0; }
