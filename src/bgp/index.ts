// BGP announcement of the service VIPs: BIRD config rendering and control-socket parsing
// (pure), and the speaker that starts, supervises and drives BIRD (edge).
export { renderBirdConfig, vipProtocol, peerProtocol } from './bird-config';
export { parseReplies, parseProtocols, replyText } from './birdc';
export type { BirdReply, BirdLine, BirdProtocol } from './birdc';
export { birdCommand } from './control';
export { BgpSpeaker } from './speaker';
export type { BgpStatus, BgpNeighbourStatus } from './speaker';
export { servableVips } from './servable';
export type { Servable, ServableInput } from './servable';
export { assertVipsNotLocal } from './local';
export { BgpDirector, holdDownMs } from './director';
export type { BgpDirectorOptions, DirectorDrainFile, DirectorState } from './director';
export { SteadySince } from './hold-down';
