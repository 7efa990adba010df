// The operations module's GraphQL: the Operation node and its results, the operations list,
// the fleet mutations that start one, and the operation(id) subscription that watches it.
import './Operation.js';
import './fleetOperations.js';
import './operationSubscription.js';
