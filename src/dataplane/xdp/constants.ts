export { SCHED, SVC_FLAG, BE_FLAG } from './layout';
