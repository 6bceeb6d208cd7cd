/**
 * The demo provider's id and name: on their own so that `holdfast --help` can show them as
 * defaults without loading the demo seeding (and the rest of the server) behind them.
 */
export const DEMO_TENANT = 'northshire-iuc';
export const DEMO_PROVIDER_NAME = 'Northshire IUC';
