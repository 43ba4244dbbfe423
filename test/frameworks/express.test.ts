import { runBehaviourSuite } from './behaviour.ts';
import { makeExpressServer } from './express-app.ts';

runBehaviourSuite('express', makeExpressServer);
